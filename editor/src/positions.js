// Line/column ↔ document offset, in the validator's convention: 1-based lines, 1-based columns
// counted in characters (Unicode scalar values, as Rust's `chars()` counts them). CodeMirror's
// offsets count UTF-16 code units, so an emoji is one column but two units.
//
// Positions arrive from a validation of a text that may since have changed, so every conversion
// clamps instead of throwing: a line past the end is the end of the document, a column past the end
// of its line is the line's end.

function isHighSurrogate(code) {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code) {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** A whole number ≥ 1 from whatever the caller passed (undefined, NaN and fractions included). */
function oneBased(value) {
  const n = Math.trunc(Number(value));
  return Number.isFinite(n) && n >= 1 ? n : 1;
}

/** UTF-16 length of the first `column - 1` characters of `text` (all of it if shorter). */
export function columnToUnits(text, column) {
  const chars = oneBased(column) - 1;
  let units = 0;
  for (let seen = 0; seen < chars && units < text.length; seen++) {
    const pair = isHighSurrogate(text.charCodeAt(units)) && isLowSurrogate(text.charCodeAt(units + 1));
    units += pair ? 2 : 1;
  }
  return units;
}

/** 1-based character column of UTF-16 index `units` in `text`. */
export function unitsToColumn(text, units) {
  let column = 1;
  const end = Math.min(Math.max(0, units), text.length);
  for (let i = 0; i < end; column++) {
    const pair = isHighSurrogate(text.charCodeAt(i)) && isLowSurrogate(text.charCodeAt(i + 1));
    i += pair ? 2 : 1;
  }
  return column;
}

/** Offset in `doc` (a CodeMirror `Text`) of a 1-based line and character column, clamped. */
export function positionToOffset(doc, line, column) {
  const n = oneBased(line);
  if (n > doc.lines) return doc.length;
  const at = doc.line(n);
  return at.from + columnToUnits(at.text, column);
}

/** The 1-based line and character column of offset `pos` in `doc`, clamped to the document. */
export function offsetToPosition(doc, pos) {
  const clamped = Math.min(Math.max(0, Math.trunc(Number(pos)) || 0), doc.length);
  const at = doc.lineAt(clamped);
  return { line: at.number, column: unitsToColumn(at.text, clamped - at.from) };
}
