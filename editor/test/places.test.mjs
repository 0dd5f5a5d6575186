// Which mapping a line belongs to, from indentation alone: nested mappings, list items (indented
// or at their key's column), block scalars, and text that does not parse.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Text } from "@codemirror/state";

import { containerPath, defaultsValue, mappingEntries, placeOf, shapeOf } from "../src/places.js";
import { triage } from "../test-support/pipeline.mjs";

const docOf = (text) => Text.of(text.split("\n"));

/** The place of the mapping holding line `n`'s innermost node. */
function placeAt(doc, n) {
  return placeOf(containerPath(doc, n, shapeOf(doc.line(n).text)));
}

const lineOf = (doc, text) => {
  for (let n = 1; n <= doc.lines; n++) if (doc.line(n).text === text) return n;
  throw new Error(`no line \`${text}\``);
};

test("a line's shape: indentation, list dashes, key and value without its comment", () => {
  assert.deepEqual(shapeOf("  - name: draft  # the second"), { indent: 2, dashes: [2], col: 4, key: "name", value: "draft" });
  assert.deepEqual(shapeOf("    prompt: |"), { indent: 4, dashes: [], col: 4, key: "prompt", value: "|" });
  assert.deepEqual(shapeOf('"quoted key": "a # b"'), { indent: 0, dashes: [], col: 0, key: "quoted key", value: '"a # b"' });
  assert.equal(shapeOf("   "), null, "a blank line has no shape");
  assert.equal(shapeOf("  # a comment"), null);
  assert.equal(shapeOf("      Ticket: {{ ticket }}").key, "Ticket", "a prompt line can look like a key");
  assert.equal(shapeOf("model: gpt-4o:latest").value, "gpt-4o:latest");
  assert.equal(shapeOf("url:http://x").key, null, "no space after the colon: a scalar");
});

test("places in the example: top level, defaults, steps, inputs", () => {
  const doc = docOf(triage);
  assert.equal(placeAt(doc, lineOf(doc, "max_parallel: 2")), "top");
  assert.equal(placeAt(doc, lineOf(doc, "  max_tokens: 300")), "defaults");
  assert.equal(placeAt(doc, lineOf(doc, "  - name: draft_reply")), "step");
  assert.equal(placeAt(doc, lineOf(doc, "    depends_on: classify")), "step");
  assert.equal(placeAt(doc, lineOf(doc, "    description: The customer's message")), "input");
  // `product: pipescope Cloud` is an input's name (free), not a key of a known place.
  assert.equal(placeAt(doc, lineOf(doc, "  product: pipescope Cloud")), null);
  // Inside a block scalar every line is text, even one that looks like a key.
  assert.equal(placeAt(doc, lineOf(doc, "      Facts: {{ steps.extract_facts.output }}")), null);
});

test("retry in defaults and in a step, lists at their key's column, deeper nesting", () => {
  const doc = docOf([
    "defaults:",
    "  retry:",
    "    attempts: 2",
    "steps:",
    "- name: a",
    "  retry:",
    "    backoff_ms: 10",
    "  depends_on:",
    "  - b",
    "  prompt: x",
    "- name: b",
    "  prompt: y",
    "env:",
    "  REGION: eu",
  ].join("\n"));
  assert.equal(placeAt(doc, 3), "retry");
  assert.equal(placeAt(doc, 5), "step");
  assert.equal(placeAt(doc, 7), "retry");
  assert.equal(placeAt(doc, 10), "step", "after a list at the key's column");
  assert.equal(placeAt(doc, 12), "step");
  assert.equal(placeAt(doc, 14), null, "env names are free");
  assert.deepEqual(mappingEntries(doc, 10, 2).map((e) => e.key), ["name", "retry", "depends_on", "prompt"]);
  assert.deepEqual(mappingEntries(doc, 13, 0).map((e) => e.key), ["defaults", "steps", "env"]);
});

test("flow style and broken text give an answer, not an exception", () => {
  const doc = docOf([
    "defaults: { provider: openai, model: gpt-4o }",
    "steps: [",
    "  { name: a, prompt: x",
    "    - : ::",
    "\t- weird: [",
    "-",
    "  -",
    "    - name: deep",
  ].join("\n"));
  for (let n = 1; n <= doc.lines; n++) {
    const shape = shapeOf(doc.line(n).text);
    if (shape) assert.doesNotThrow(() => placeOf(containerPath(doc, n, shape)));
  }
  assert.equal(defaultsValue(doc, "provider"), "openai");
  assert.equal(defaultsValue(doc, "model"), "gpt-4o");
  assert.equal(defaultsValue(docOf("defaults:\n  provider: \"openai\"\n  model: x"), "provider"), "openai");
  assert.equal(defaultsValue(docOf("name: x"), "provider"), null);
});
