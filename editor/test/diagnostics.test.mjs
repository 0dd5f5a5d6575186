// The validator's problems as CodeMirror diagnostics: ranges, severities and the suggested fix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EditorState, Text } from "@codemirror/state";

import { toDiagnostic, toDiagnostics } from "../src/diagnostics.js";
import { byteLength, textByteLength } from "../src/bytes.js";

const text = [
  "name: demo",
  "steps:",
  "  - name: draft",
  "    promt: Hello {{ steps.later.output }}",
  "    provider: \"openia\"",
  "",
].join("\n");
const doc = Text.of(text.split("\n"));
const at = (line, column) => doc.line(line).from + column - 1;

test("without an end, the token at the start is underlined", () => {
  const d = toDiagnostic(doc, { line: 4, column: 5, severity: "error", message: "unknown key `promt`" });
  assert.equal(doc.sliceString(d.from, d.to), "promt");
  const ref = toDiagnostic(doc, { line: 4, column: 21, severity: "error", message: "later step" });
  assert.equal(doc.sliceString(ref.from, ref.to), "steps.later.output");
  const quoted = toDiagnostic(doc, { line: 5, column: 15, severity: "error", message: "no such provider" });
  assert.equal(doc.sliceString(quoted.from, quoted.to), "\"openia\"");
});

test("an explicit end is used, and an end before the start is not", () => {
  const d = toDiagnostic(doc, { line: 4, column: 5, endLine: 4, endColumn: 8, message: "m" });
  assert.equal(doc.sliceString(d.from, d.to), "pro");
  const backwards = toDiagnostic(doc, { line: 4, column: 5, endLine: 1, endColumn: 1, message: "m" });
  assert.equal(backwards.from, at(4, 5));
  assert.equal(backwards.to, at(4, 6));
});

test("a problem past the end of the changed text lands at its end", () => {
  const d = toDiagnostic(doc, { line: 99, column: 3, message: "m" });
  assert.equal(d.from, doc.length);
  assert.equal(d.to, doc.length);
  const pastLine = toDiagnostic(doc, { line: 1, column: 50, message: "m" });
  assert.equal(pastLine.from, doc.line(1).to);
});

test("severity is error unless it is one CodeMirror knows; the hint and suggestion join the message", () => {
  const d = toDiagnostic(doc, { line: 4, column: 5, severity: "fatal", message: "unknown key `promt`", hint: "keys of a step: name, prompt", suggestion: "prompt" });
  assert.equal(d.severity, "error");
  assert.equal(d.message, "unknown key `promt`\nkeys of a step: name, prompt\nDid you mean `prompt`?");
  assert.equal(toDiagnostic(doc, { line: 1, column: 1, severity: "warning", message: "w" }).severity, "warning");
});

test("a suggestion's fix replaces the token, keeping its quotes", () => {
  const apply = (problem) => {
    const d = toDiagnostic(doc, problem);
    let state = EditorState.create({ doc: text });
    const view = { dispatch: (spec) => { state = state.update(spec).state; } };
    d.actions[0].apply(view, d.from, d.to);
    return state.doc.toString().split("\n");
  };
  assert.equal(apply({ line: 4, column: 5, message: "m", suggestion: "prompt" })[3], "    prompt: Hello {{ steps.later.output }}");
  assert.equal(apply({ line: 5, column: 15, message: "m", suggestion: "openai" })[4], "    provider: \"openai\"");
  assert.equal(toDiagnostic(doc, { line: 6, column: 1, message: "m", suggestion: "x" }).actions, undefined);
});

test("a list is sorted by position and anything that is not a problem is skipped", () => {
  const list = toDiagnostics(doc, [{ line: 4, column: 5, message: "b" }, null, 7, { line: 1, column: 1, message: "a" }]);
  assert.deepEqual(list.map((d) => d.message), ["a", "b"]);
  assert.deepEqual(toDiagnostics(doc, undefined), []);
});

test("UTF-8 sizes match what TextEncoder writes", () => {
  for (const s of ["", "abc", "é", "€", "😀", "a\ud83db", "x\ud83d"]) {
    assert.equal(byteLength(s), new TextEncoder().encode(s).length, JSON.stringify(s));
  }
  const multi = Text.of(["é", "😀", ""]);
  assert.equal(textByteLength(multi), new TextEncoder().encode(multi.toString()).length);
});
