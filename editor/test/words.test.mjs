// What completion replaces (through CodeMirror's own matchBefore) and what a hover is about.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CompletionContext } from "@codemirror/autocomplete";
import { EditorState, Text } from "@codemirror/state";

import { SEGMENT, SEGMENT_ONLY, wordAround } from "../src/words.js";

function replaced(before) {
  const state = EditorState.create({ doc: before });
  return new CompletionContext(state, before.length, false).matchBefore(SEGMENT)?.text;
}

test("completion replaces the name segment before the cursor, never a list item's dash", () => {
  assert.equal(replaced("  - na"), "na");
  assert.equal(replaced("  -"), "");
  assert.equal(replaced("prompt: {{ steps."), "");
  assert.equal(replaced("prompt: {{ steps.dra"), "dra");
  assert.equal(replaced("name: support-tri"), "support-tri");
  assert.ok(SEGMENT_ONLY.test("max_tok"));
  assert.ok(!SEGMENT_ONLY.test("max tok"));
  assert.ok(!SEGMENT_ONLY.test("-x"));
});

const doc = Text.of(["  - name: draft", "    prompt: Use {{ steps.plan.output }}."]);
const line2 = doc.line(2).from;

test("a hover is about the whole word under the pointer, dots included", () => {
  const at = (pos, side) => wordAround(doc, pos, side)?.text ?? null;
  assert.equal(at(4, 1), "name");
  assert.equal(at(5, -1), "name");
  const ref = "    prompt: Use {{ ".length;
  assert.equal(at(line2 + ref + 3, 1), "steps.plan.output");
  // The sentence's full stop after `}}` is not part of anything.
  assert.equal(at(doc.line(2).to, -1), null);
});

test("no word at the edge the pointer is not over, over space, or over a list item's dash", () => {
  assert.equal(wordAround(doc, 8, 1), null); // after `name`, pointer over `:`
  assert.equal(wordAround(doc, 4, -1), null); // before `name`, pointer over the space
  assert.equal(wordAround(doc, 2, 1), null); // the `-`
  assert.equal(wordAround(doc, 0, 1), null);
});
