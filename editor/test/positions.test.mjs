// Line/column conversions in the validator's convention (1-based, columns in characters) against
// CodeMirror's UTF-16 offsets, including text that changed after it was validated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Text } from "@codemirror/state";

import { columnToUnits, offsetToPosition, positionToOffset, unitsToColumn } from "../src/positions.js";

const doc = Text.of(["name: demo", "prompt: \"😀 {{ x }}\"", "", "é: 1"]);

test("ASCII positions map to offsets and back", () => {
  assert.equal(positionToOffset(doc, 1, 1), 0);
  assert.equal(positionToOffset(doc, 1, 7), 6);
  assert.equal(positionToOffset(doc, 2, 1), 11);
  assert.deepEqual(offsetToPosition(doc, 6), { line: 1, column: 7 });
  assert.deepEqual(offsetToPosition(doc, 11), { line: 2, column: 1 });
});

test("a character outside the BMP is one column but two offsets", () => {
  // Line 2: `prompt: "😀 {{ x }}"`; the emoji is column 10, the space after it column 11.
  const line2 = doc.line(2).from;
  assert.equal(positionToOffset(doc, 2, 10), line2 + 9);
  assert.equal(positionToOffset(doc, 2, 11), line2 + 11);
  assert.deepEqual(offsetToPosition(doc, line2 + 11), { line: 2, column: 11 });
  assert.equal(columnToUnits("😀😀a", 3), 4);
  assert.equal(unitsToColumn("😀😀a", 4), 3);
  // An accented letter in one code unit is one column too.
  assert.equal(positionToOffset(doc, 4, 2), doc.line(4).from + 1);
});

test("positions past the end of a line or of the text are clamped, never thrown", () => {
  assert.equal(positionToOffset(doc, 1, 99), doc.line(1).to);
  assert.equal(positionToOffset(doc, 3, 5), doc.line(3).from);
  assert.equal(positionToOffset(doc, 40, 1), doc.length);
  assert.equal(positionToOffset(Text.empty, 3, 3), 0);
  assert.deepEqual(offsetToPosition(doc, 10_000), offsetToPosition(doc, doc.length));
  assert.deepEqual(offsetToPosition(doc, -5), { line: 1, column: 1 });
});

test("missing, zero, negative or fractional lines and columns count as the start", () => {
  assert.equal(positionToOffset(doc, 0, 0), 0);
  assert.equal(positionToOffset(doc, -3, -3), 0);
  assert.equal(positionToOffset(doc, undefined, undefined), 0);
  assert.equal(positionToOffset(doc, "2", NaN), doc.line(2).from);
  assert.equal(positionToOffset(doc, 1.9, 3.7), 2);
});

test("a lone surrogate counts as one column", () => {
  assert.equal(columnToUnits("\ud83dab", 2), 1);
  assert.equal(unitsToColumn("\ud83dab", 2), 3);
});
