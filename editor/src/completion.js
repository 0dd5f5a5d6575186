// Completion in a pipeline file, as a pure function of the text, the cursor, the server's schema
// and the last check's outline (see knowledge.js):
// - at a key's position, the keys of the mapping the cursor is in (top level, `defaults:`, a step,
//   a `retry:`, an input) that it does not have yet, with their type, default and doc;
// - after `provider:` the configured providers; after `model:` the models of that mapping's
//   provider (else `defaults:`'s, else the built-in default's, else every provider's); after
//   `depends_on:` the steps it may wait for without a cycle;
// - inside `{{ }}` or `{% %}`: inputs, `env.` names, `steps.` names of the steps this one may read
//   (earlier, and not waiting for it), `.output` after `steps.NAME.`, and filters after `|`.
// The result is `{from, options: [{label, type, detail, info, apply}]}` (CodeMirror filters the
// options by what is typed from `from` on), or null.

import {
  containerPath, defaultsValue, entryValue, flowValue, inDependsOnList, mappingEntries, placeOf, shapeOf,
  stepEntries, stepItem,
} from "./places.js";
import {
  describeKey, describeProvider, describeStep, readOutline, readSchema, referableSteps, showValue, target,
} from "./knowledge.js";

const NAME = /^(?:[A-Za-z0-9_][\w-]*)?$/;
// CodeMirror shows the detail beside the label; a long type goes whole into the info beside the list.
const DETAIL_CHARS = 30;

/**
 * The template expression between an unclosed `{{` or `{%` and the end of `before` (the line up to
 * the cursor), or null when the cursor is not inside one (or is inside a string in one).
 */
export function openTag(before) {
  const open = Math.max(before.lastIndexOf("{{"), before.lastIndexOf("{%"));
  if (open < 0) return null;
  const closer = before[open + 1] === "{" ? "}}" : "%}";
  const expression = before.slice(open + 2);
  if (expression.includes(closer)) return null;
  const quotes = (expression.match(/"/g)?.length ?? 0) + (expression.match(/'/g)?.length ?? 0);
  return quotes % 2 === 0 ? expression : null;
}

/** The step containing line `lineNo` (`{name, line, entries}`), or null outside `steps:`. */
export function stepAt(doc, lineNo) {
  const shape = shapeOf(doc.line(lineNo).text);
  const item = shape && stepItem(containerPath(doc, lineNo, shape));
  if (!item) return null;
  const entries = stepEntries(doc, item);
  return { name: entryValue(entries, "name"), line: item.line, entries };
}

function shorten(text) {
  return text.length <= DETAIL_CHARS ? text : `${text.slice(0, DETAIL_CHARS - 1)}…`;
}

function keyOptions(keys, present, colonFollows) {
  return keys
    .filter((key) => !present.has(key.name))
    .map((key) => ({
      label: key.name,
      type: "property",
      detail: shorten(key.kind),
      info: describeKey(key),
      // A key that holds a mapping or a list goes on with a new line; any other with its value.
      apply: colonFollows ? key.name : /^(mapping|non-empty list)/.test(key.kind) ? `${key.name}:` : `${key.name}: `,
    }));
}

function providerOptions(known) {
  return [...known.providers.values()].map((provider) => ({
    label: provider.name,
    type: "constant",
    detail: provider.kind,
    info: describeProvider(provider),
  }));
}

function modelOptions(known, providerName) {
  const provider = providerName == null ? null : known.providers.get(providerName);
  // A provider this server does not have (or none at all): every known model, each saying whose.
  const sources = provider ? [provider] : [...known.providers.values()];
  const seen = new Set();
  const options = [];
  for (const source of sources) {
    for (const model of source.models) {
      if (seen.has(model)) continue;
      seen.add(model);
      options.push({
        label: model, type: "constant", detail: source.name, info: `model of provider ${source.name} (${source.kind})`,
      });
    }
  }
  return options;
}

function stepOptions(steps, { output = false, colonFollows = false } = {}) {
  return steps.map((step) => ({
    label: step.name,
    type: "variable",
    detail: target(step),
    info: describeStep(step),
    apply: output && !colonFollows ? `${step.name}.output` : step.name,
  }));
}

function inputOptions(outline) {
  return outline.inputs.map((input) => ({
    label: input.name,
    type: "variable",
    detail: "input",
    info: describeInput(input),
  }));
}

/** An input's description and default, as completion's info and hover show them. */
export function describeInput(input) {
  const lines = [`input ${input.name}`];
  if (input.description) lines.push(input.description);
  const required = input.default === undefined || input.default === null;
  lines.push(required ? "Required: no default." : `Default: ${showValue(input.default)}`);
  return lines.join("\n");
}

/** Completion inside a template tag whose text before the cursor is `expression`. */
function inTemplate(expression, pos, after, self, known, outline) {
  const result = (typed, options) => (options.length === 0 ? null : { from: pos - typed.length, options });
  let match = /\|\s*(\w*)$/.exec(expression);
  if (match) {
    const filters = known.filters.map((f) => ({ label: f.name, type: "function", detail: "filter", info: f.doc }));
    return result(match[1], filters);
  }
  match = /(?:^|[^\w.])steps\.(\w+)\.(\w*)$/.exec(expression);
  if (match) {
    const step = outline.byName.get(match[1]);
    const info = step ? `output of step ${step.name}` : `the text step ${match[1]} answered`;
    return result(match[2], [{ label: "output", type: "property", detail: step ? target(step) : "", info }]);
  }
  match = /(?:^|[^\w.])steps\.(\w*)$/.exec(expression);
  if (match) {
    const colonFollows = /^\w*\./.test(after);
    const steps = referableSteps(outline, self, { earlierOnly: true });
    return result(match[1], stepOptions(steps, { output: true, colonFollows }));
  }
  match = /(?:^|[^\w.])env\.(\w*)$/.exec(expression);
  if (match) {
    return result(match[1], outline.env.map((name) => ({
      label: name, type: "variable", detail: "env", info: `env ${name} (set in the file's env)`,
    })));
  }
  match = /(?:^|[^\w.])inputs\.(\w*)$/.exec(expression);
  if (match) return result(match[1], inputOptions(outline));
  match = /(?:^|[^\w.)\]'"])([A-Za-z_]\w*)?$/.exec(expression);
  if (!match) return null;
  const sections = [];
  if (referableSteps(outline, self, { earlierOnly: true }).length > 0) {
    sections.push({
      label: "steps", type: "namespace", detail: "steps.NAME.output", info: "the output of an earlier step",
    });
  }
  if (outline.env.length > 0) {
    sections.push({ label: "env", type: "namespace", detail: "env.NAME", info: "a value of the file's env" });
  }
  return result(match[1] ?? "", [...inputOptions(outline), ...sections]);
}

/** Completion of the value of `key` in a mapping of `place`; `typed` is the value so far. */
function valueOf(key, place, typed, pos, context) {
  const { known, outline, doc, mappingProvider } = context;
  let options = [];
  if (key === "provider" && (place === "step" || place === "defaults")) {
    options = providerOptions(known);
  } else if (key === "model" && (place === "step" || place === "defaults")) {
    const fallback = known.keys.get("defaults")?.find((k) => k.name === "provider")?.default ?? null;
    const provider = mappingProvider() ?? (place === "step" ? defaultsValue(doc, "provider") : null) ?? fallback;
    options = modelOptions(known, provider);
  } else if (key === "depends_on" && place === "step") {
    options = stepOptions(referableSteps(outline, context.self()));
  }
  return options.length === 0 ? null : { from: pos - typed.length, options };
}

/** Keys of a one-line flow mapping (`{ a: 1, b: 2 }`) other than the one at `except`. */
function flowKeys(flow, except) {
  const keys = new Set();
  for (const match of flow.matchAll(/[{,]\s*([\w-]+)\s*:/g)) {
    if (match.index !== except) keys.add(match[1]);
  }
  return keys;
}

/**
 * Completion inside a one-line flow mapping, `defaults: { provider: x, mo`: its keys, or a key's
 * value. `value` is the text from `{` to the cursor, `path` the mapping's own path; after the
 * mapping's `}` nothing is offered.
 */
function inFlowMapping(value, path, line, shape, pos, after, context) {
  if (value.split("{").length <= value.split("}").length) return null;
  const place = placeOf(path);
  const cut = Math.max(value.lastIndexOf("{"), value.lastIndexOf(","));
  const part = value.slice(cut + 1);
  // The whole mapping as written, its `{` where `value`'s is, so offsets in one are offsets in the other.
  const flow = line.text.slice(line.text.indexOf("{", shape.col));
  const keyAt = /^\s*([\w-]*)$/.exec(part);
  if (keyAt) {
    const keys = context.known.keys.get(place);
    const options = keys ? keyOptions(keys, flowKeys(flow, cut), /^[\w-]*\s*:/.test(after)) : [];
    return options.length === 0 ? null : { from: pos - keyAt[1].length, options };
  }
  const valueAt = /^\s*([\w-]+)\s*:\s*["']?([^\s,"'{}]*)$/.exec(part);
  if (!valueAt) return null;
  const inMapping = { ...context, mappingProvider: () => flowValue(flow, "provider") };
  return valueOf(valueAt[1], place, valueAt[2], pos, inMapping);
}

/**
 * What may be typed at offset `pos` of `doc` (a CodeMirror `Text`), given the server's `schema`
 * and the last check's `outline` (either may be null); null when nothing applies.
 */
export function completeAt(doc, pos, schema, outline) {
  const line = doc.lineAt(pos);
  const before = line.text.slice(0, pos - line.from);
  const after = line.text.slice(pos - line.from);
  const known = readSchema(schema);
  const steps = readOutline(outline);

  const expression = openTag(before);
  if (expression != null) {
    const self = stepAt(doc, line.number);
    return inTemplate(expression, pos, after, self, known, steps);
  }
  // Nothing to offer in a comment.
  if (/(^|\s)#/.test(before.replace(/"[^"]*"|'[^']*'/g, ""))) return null;

  const blank = before.trim() === "";
  const shape = blank
    ? { indent: before.length, dashes: [], col: before.length, key: null, value: "" }
    : shapeOf(before);
  if (!shape) return null;
  const path = containerPath(doc, line.number, shape);
  const starts = shape.dashes.length > 0;
  const colonFollows = /^[\w-]*\s*:/.test(after);
  const context = {
    known,
    outline: steps,
    doc,
    self: () => stepAt(doc, line.number),
    mappingProvider: () => entryValue(mappingEntries(doc, line.number, shape.col, starts), "provider"),
  };

  if (shape.key == null) {
    if (!NAME.test(shape.value)) return null;
    if (starts && inDependsOnList(path)) {
      return valueOf("depends_on", "step", shape.value, pos, context);
    }
    const place = placeOf(path);
    const keys = known.keys.get(place);
    if (!keys) return null;
    const present = new Set(mappingEntries(doc, line.number, shape.col, starts)
      .filter((entry) => entry.line !== line.number)
      .map((entry) => entry.key));
    const options = keyOptions(keys, present, colonFollows);
    return options.length === 0 ? null : { from: pos - shape.value.length, options };
  }

  const place = placeOf(path);
  const value = before.slice(before.indexOf(":", shape.col) + 1).trimStart();
  if (value.startsWith("{")) {
    const mapping = [...path, { kind: "key", name: shape.key, value: "" }];
    return inFlowMapping(value, mapping, line, shape, pos, after, context);
  }
  if (value.startsWith("[")) {
    // A one-line flow list: `depends_on: [outline, dra`.
    const item = /[[,]\s*([\w-]*)$/.exec(value);
    return item && shape.key === "depends_on" ? valueOf(shape.key, place, item[1], pos, context) : null;
  }
  const typed = /^["']?([^\s"'#]*)$/.exec(value);
  return typed ? valueOf(shape.key, place, typed[1], pos, context) : null;
}
