// Where in a pipeline file a position is, read from indentation alone: which mapping it belongs
// to ("top", "defaults", "step", "retry", "input" — the places of the validator's key tables),
// what keys that mapping already has, and which step it is in. It needs no YAML parse, so it
// works on text that does not parse yet, which is most of the time while someone types.
//
// The rule it rests on: in block YAML, the nearest line above with less indentation holds the
// parent. A list item's `- ` is a node of its own (its mapping starts after the dash), and a list
// may sit at its parent key's own column (`steps:` then `- name: a` at column 0). Flow style
// (`{ a: 1 }`) on one line is read by the callers; across lines it counts as a scalar.
// Lines are CodeMirror's `Text` lines (1-based); columns here are 0-based UTF-16 offsets in a
// line, as `line.text` indexes them.

// A key as the validator's tables spell them, or quoted, followed by `:` and space or the end.
const KEY = /^([A-Za-z0-9_][\w-]*|"[^"]*"|'[^']*')[ \t]*:(?=[ \t]|$)/;

function unquote(key) {
  return /^["']/.test(key) ? key.slice(1, -1) : key;
}

/** A value without its trailing comment (`provider: x  # why` → `x`); quoted values are kept. */
function stripComment(raw) {
  const value = raw.trim();
  if (/^["']/.test(value)) return value;
  const hash = value.search(/(^|[ \t])#/);
  return (hash < 0 ? value : value.slice(0, hash)).trim();
}

/**
 * The YAML shape of one line: its indentation, the columns of its list dashes, and what follows
 * them at `col` — a key with its value, or a scalar. Null for a blank or comment-only line.
 */
export function shapeOf(text) {
  let indent = 0;
  while (text[indent] === " ") indent++;
  if (indent === text.length || text[indent] === "#") return null;
  const dashes = [];
  let col = indent;
  while (text[col] === "-" && (col + 1 === text.length || text[col + 1] === " ")) {
    dashes.push(col);
    col++;
    while (text[col] === " ") col++;
  }
  const rest = text.slice(col);
  const key = KEY.exec(rest);
  if (key) return { indent, dashes, col, key: unquote(key[1]), value: stripComment(rest.slice(key[0].length)) };
  return { indent, dashes, col, key: null, value: stripComment(rest) };
}

/** The nodes of a line from the innermost (its key or scalar) out to its outermost dash. */
function nodesOf(shape, line) {
  const nodes = [shape.key == null
    ? { kind: "scalar", line, col: shape.col }
    : { kind: "key", line, col: shape.col, name: shape.key, value: shape.value }];
  for (let i = shape.dashes.length - 1; i >= 0; i--) {
    nodes.push({ kind: "item", line, col: shape.dashes[i], content: shape.dashes[i + 1] ?? shape.col });
  }
  return nodes;
}

/**
 * The chain of nodes containing a node at column `col` of line `lineNo` (outermost first): keys
 * `{kind: "key", line, col, name, value}` and list items `{kind: "item", line, col, content}`
 * (`content` is the column of the item's own mapping). `isItem`: the node is itself a list item,
 * whose parent key may sit at the same column.
 */
export function ancestors(doc, lineNo, col, isItem = false) {
  const path = [];
  let target = col;
  let item = isItem;
  let deeper = " ".repeat(target + 1);
  for (let n = lineNo - 1; n >= 1 && (target > 0 || item); n--) {
    const text = doc.line(n).text;
    // Deeper lines belong to an earlier sibling (or are a scalar's continuation). Checked before
    // reading the line's shape: in a long file most lines above are deeper.
    if (text.startsWith(deeper)) continue;
    const shape = shapeOf(text);
    if (!shape || shape.indent > target) continue;
    for (const node of nodesOf(shape, n)) {
      // Anything else at `target` is a sibling; a scalar line says nothing about the parent.
      const parent = node.kind === "key"
        ? node.col < target || (node.col === target && item)
        : node.kind === "item" && node.col < target;
      if (!parent) continue;
      path.unshift(node);
      target = node.col;
      item = node.kind === "item";
      deeper = " ".repeat(target + 1);
    }
  }
  return path;
}

/** The nodes containing the innermost node of line `lineNo`, whose shape is `shape`. */
export function containerPath(doc, lineNo, shape) {
  if (shape.dashes.length === 0) return ancestors(doc, lineNo, shape.indent);
  const outer = ancestors(doc, lineNo, shape.dashes[0], true);
  return [...outer, ...nodesOf(shape, lineNo).filter((node) => node.kind === "item").reverse()];
}

/** Whether any key of `path` has a value on its own line: then what follows is inside a scalar. */
export function insideScalar(path) {
  return path.some((node) => node.kind === "key" && node.value !== "");
}

/**
 * The place of the mapping whose parents are `path` (as `ancestors` gives them): "top",
 * "defaults", "step", "retry" or "input"; null for any other (an env's values, a list of names)
 * or when `path` ends inside a scalar.
 */
export function placeOf(path) {
  if (insideScalar(path)) return null;
  const names = path.map((node) => (node.kind === "item" ? "-" : node.name)).join(" ");
  switch (names) {
    case "": return "top";
    case "defaults": return "defaults";
    case "defaults retry": return "retry";
    case "steps -": return "step";
    case "steps - retry": return "retry";
    default:
      return /^inputs [^ -]/.test(names) && path.length === 2 ? "input" : null;
  }
}

/**
 * The entries `{key, value, line}` of the block mapping whose keys sit at column `col` and which
 * includes line `lineNo`. `starts`: the mapping starts on `lineNo` (a new list item), so nothing
 * above belongs to it.
 */
export function mappingEntries(doc, lineNo, col, starts = false) {
  const entries = [];
  const take = (shape, n) => {
    if (shape.col === col && shape.key != null) entries.push({ key: shape.key, value: shape.value, line: n });
  };
  const own = shapeOf(doc.line(lineNo).text);
  if (own) take(own, lineNo);
  // Upwards to the mapping's first key: the line of the item that holds it, or the line below
  // its parent key.
  if (!starts && !(own && own.col === col && own.dashes.length > 0)) {
    for (let n = lineNo - 1; n >= 1; n--) {
      const shape = shapeOf(doc.line(n).text);
      if (!shape || shape.indent > col) continue;
      if (shape.indent === col && shape.dashes.length > 0) continue; // a sibling's list at our column
      if (shape.col !== col) break;
      take(shape, n);
      if (shape.dashes.length > 0) break;
    }
  }
  for (let n = lineNo + 1; n <= doc.lines; n++) {
    const shape = shapeOf(doc.line(n).text);
    if (!shape || shape.indent > col) continue;
    if (shape.indent < col) break;
    if (shape.dashes.length === 0) take(shape, n);
  }
  return entries.sort((a, b) => a.line - b.line);
}

/** Whether `path` ends at an item of a step's `depends_on:` list (whose value is a step name). */
export function inDependsOnList(path) {
  return path.at(-1)?.kind === "item" && path.at(-2)?.name === "depends_on" && placeOf(path.slice(0, -2)) === "step";
}

/** The item node of the step containing `path`'s end, or null outside `steps:`. */
export function stepItem(path) {
  return path[0]?.kind === "key" && path[0].name === "steps" && path[1]?.kind === "item" ? path[1] : null;
}

/** The entries of a step given its item node (the line with its dash). */
export function stepEntries(doc, item) {
  return mappingEntries(doc, item.line, item.content, true);
}

/** The value of `key` among `entries`, unquoted, or null. */
export function entryValue(entries, key) {
  const entry = entries.find((e) => e.key === key);
  if (!entry || entry.value === "") return null;
  return entry.value.replace(/^(["'])(.*)\1$/, "$2");
}

/** The value of `key` in a one-line flow mapping such as `{ provider: x, model: y }`. */
export function flowValue(flow, key) {
  const match = new RegExp(`[{,]\\s*["']?${key}["']?\\s*:\\s*["']?([^,}"'\\s]+)`).exec(flow);
  return match ? match[1] : null;
}

/** `defaults:`'s value of `key` (written as a block or a one-line flow mapping), or null. */
export function defaultsValue(doc, key) {
  for (let n = 1; n <= doc.lines; n++) {
    const shape = shapeOf(doc.line(n).text);
    if (!shape || shape.indent !== 0 || shape.key !== "defaults") continue;
    if (shape.value.startsWith("{")) return flowValue(shape.value, key);
    for (let m = n + 1; m <= doc.lines; m++) {
      const inner = shapeOf(doc.line(m).text);
      if (!inner) continue;
      if (inner.indent === 0) return null;
      return entryValue(mappingEntries(doc, m, inner.col), key);
    }
    return null;
  }
  return null;
}
