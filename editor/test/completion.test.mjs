// Completion as a pure function of the text and the cursor (‸): keys by place without those
// already there, providers and their models, step names without cycles, template references
// and filters.
import { test } from "node:test";
import assert from "node:assert/strict";

import { completeAt, openTag } from "../src/completion.js";
import { referableSteps, readOutline } from "../src/knowledge.js";
import { cursor, edit, outline, schema } from "../test-support/pipeline.mjs";

function complete(text, given = outline) {
  const { doc, pos } = cursor(text);
  return completeAt(doc, pos, schema, given);
}

const labels = (text, given) => complete(text, given)?.options.map((o) => o.label) ?? null;

test("a new step's keys, with their type, default and doc", () => {
  const result = complete(edit("  - name: review\n", "  - name: review\n    pro‸\n"));
  // review already has name, model and prompt.
  assert.deepEqual(result.options.map((o) => o.label), ["provider", "system", "temperature", "retry", "depends_on"]);
  const provider = result.options[0];
  assert.equal(provider.detail, "provider name configured on t…");
  assert.equal(provider.info, "provider name configured on the server\nDefault: `defaults.provider`\nWhere the prompt is sent.");
  assert.equal(provider.apply, "provider: ");
  assert.equal(result.options.find((o) => o.label === "retry").apply, "retry:", "a mapping goes on on the next line");
  // `from` is where the typed `pro` starts, so CodeMirror filters by it and replaces it.
  const { doc, pos } = cursor(edit("  - name: review\n", "  - name: review\n    pro‸\n"));
  assert.equal(doc.sliceString(result.from, pos), "pro");
});

test("the first key of a new list item offers every step key", () => {
  const list = labels(edit("  - name: review\n", "  - ‸\n  - name: review\n"));
  assert.deepEqual(list, ["name", "provider", "model", "system", "prompt", "temperature", "retry", "depends_on"]);
  // A key typed before an existing colon is completed without a second one.
  const result = complete(edit("    temperature: 0\n    prompt: |\n      List", "    temp‸: 0\n    prompt: |\n      List"));
  assert.equal(result.options.find((o) => o.label === "temperature").apply, "temperature");
});

test("keys of the top level, defaults, retry and an input", () => {
  assert.deepEqual(labels(edit("max_parallel: 2\n", "max_parallel: 2\n‸\n")), ["env"]);
  assert.deepEqual(labels(edit("  max_tokens: 300\n", "  max_tokens: 300\n  ‸\n")), ["retry"]);
  assert.deepEqual(labels(edit("  max_tokens: 300\n", "  max_tokens: 300\n  retry:\n    attempts: 2\n    b‸\n")), ["backoff_ms", "max_backoff_ms"]);
  assert.deepEqual(labels(edit("    temperature: 0\n    prompt: |\n      List", "    temperature: 0\n    retry:\n      ‸\n    prompt: |\n      List")), ["attempts", "backoff_ms", "max_backoff_ms"]);
  assert.deepEqual(labels(edit("  product: pipescope Cloud\n", "  product:\n    default: x\n    ‸\n")), ["description"]);
});

test("no keys where names are free, in a prompt, or in a comment", () => {
  assert.equal(complete(edit("  product: pipescope Cloud\n", "  product: pipescope Cloud\n  ‸\n")), null, "an input's name");
  assert.equal(complete(edit("      Answer with", "      Ans‸wer with")), null, "a block scalar");
  assert.equal(complete(edit("max_parallel: 2\n", "max_parallel: 2 # pro‸\n")), null);
});

test("providers after `provider:`, and the models of the mapping's provider after `model:`", () => {
  assert.deepEqual(labels(edit("  - name: review\n", "  - name: review\n    provider: ‸\n")), ["simulated", "openai"]);
  const provider = complete(edit("  - name: review\n", "  - name: review\n    provider: \"op‸\n"));
  assert.equal(provider.options[1].info, "provider openai (openai)\nmodels: gpt-4o, gpt-4o-mini");
  // The step's own provider, wherever it is in the step.
  assert.deepEqual(labels(edit("    model: sim-large\n", "    model: gpt‸\n    provider: openai\n")), ["gpt-4o", "gpt-4o-mini"]);
  // Else the provider of defaults.
  assert.deepEqual(labels(edit("    model: sim-large\n", "    model: ‸\n")), ["sim-small", "sim-large"]);
  const openaiDefaults = edit("  provider: simulated\n", "  provider: openai\n");
  assert.deepEqual(labels(edit("    model: sim-large\n", "    model: ‸\n", openaiDefaults)), ["gpt-4o", "gpt-4o-mini"]);
  // A provider the server does not have: every model, each saying whose it is.
  const unknown = complete(edit("    model: sim-large\n", "    provider: other\n    model: ‸\n"));
  assert.deepEqual(unknown.options.map((o) => `${o.label}@${o.detail}`), ["sim-small@simulated", "sim-large@simulated", "gpt-4o@openai", "gpt-4o-mini@openai"]);
  // A provider without a price table has no known models: none rather than another provider's.
  const bare = { ...schema, providers: [...schema.providers, { name: "local", kind: "openai", models: [] }] };
  const { doc, pos } = cursor(edit("    model: sim-large\n", "    provider: local\n    model: ‸\n"));
  assert.equal(completeAt(doc, pos, bare, outline), null);
});

test("flow style: keys and values inside `defaults: { … }`", () => {
  assert.deepEqual(labels("defaults: { provider: openai, m‸ }\nsteps: []"), ["model", "max_tokens", "retry"]);
  assert.deepEqual(labels("defaults: { provider: openai, model: g‸ }"), ["gpt-4o", "gpt-4o-mini"]);
  assert.deepEqual(labels("defaults: { provider: ‸"), ["simulated", "openai"]);
  assert.equal(complete("defaults: { provider: openai, model: gpt-4o }, x‸"), null);
});

test("a step's `depends_on` offers the steps it may wait for without a cycle", () => {
  // extract_facts: review depends on it (so may not be waited for), classify and draft_reply may.
  assert.deepEqual(labels(edit("    depends_on: classify", "    depends_on: ‸")), ["classify", "draft_reply"]);
  assert.deepEqual(labels(edit("    depends_on: classify", "    depends_on: [classify, d‸]")), ["classify", "draft_reply"]);
  assert.deepEqual(labels(edit("    depends_on: classify", "    depends_on:\n      - classify\n      - ‸")), ["classify", "draft_reply"]);
});

test("the no-cycle rule: not itself, nothing that depends on it, and for templates only earlier steps", () => {
  const read = readOutline(outline);
  const names = (self, options) => referableSteps(read, self, options).map((s) => s.name);
  assert.deepEqual(names({ name: "classify", line: 18 }), [], "everything waits for classify");
  assert.deepEqual(names({ name: "draft_reply", line: 25 }), ["classify", "extract_facts"]);
  assert.deepEqual(names({ name: "draft_reply", line: 25 }, { earlierOnly: true }), ["classify"]);
  assert.deepEqual(names({ name: "review", line: 39 }, { earlierOnly: true }), ["classify", "draft_reply", "extract_facts"]);
  // A step the last check has not seen yet: the steps above it.
  assert.deepEqual(names({ name: null, line: 30 }, { earlierOnly: true }), ["classify", "draft_reply"]);
  // Through a chain: c waits for b, b for a; a may not refer to b or c, even if they were above it.
  const chain = readOutline({ steps: [
    { name: "c", line: 1, depends_on: ["b"] }, { name: "b", line: 2, depends_on: ["a"] }, { name: "a", line: 3, depends_on: [] }, { name: "d", line: 4, depends_on: [] },
  ] });
  assert.deepEqual(referableSteps(chain, { name: "a", line: 3 }).map((s) => s.name), ["d"]);
});

test("inside `{{ steps.`: only the steps this one may read, completed with `.output`", () => {
  const inDraft = complete(edit("{{ steps.classify.output }}", "{{ steps.‸"));
  assert.deepEqual(inDraft.options.map((o) => o.label), ["classify"]);
  assert.equal(inDraft.options[0].apply, "classify.output");
  assert.equal(inDraft.options[0].info, "output of step classify, line 18, simulated/sim-small");
  assert.deepEqual(labels(edit("{{ steps.draft_reply.output }}", "{{ steps.‸ }}")), ["classify", "draft_reply", "extract_facts"]);
  // On the step's own line, too; and before an existing `.output` only the name is put in.
  const own = complete(edit("  - name: extract_facts\n", "  - name: extract_facts\n    system: Use {{ steps.cl‸.output }}\n"));
  assert.deepEqual(own.options.map((o) => `${o.label}→${o.apply}`), ["classify→classify", "draft_reply→draft_reply"]);
  // The first step may read no step: nothing is offered.
  assert.equal(complete(edit("Ticket: {{ ticket }}\n  - name: draft_reply", "Ticket: {{ steps.‸ }}\n  - name: draft_reply")), null);
  assert.deepEqual(labels(edit("{{ steps.classify.output }}", "{{ steps.classify.‸ }}")), ["output"]);
});

test("inside `{{ }}`: inputs, env names, and filters after `|`", () => {
  const bare = complete(edit("{{ steps.classify.output }}", "{{ t‸ }}"));
  assert.deepEqual(bare.options.map((o) => o.label), ["ticket", "product", "tone", "steps", "env"]);
  assert.equal(bare.options[0].info, "input ticket\nThe customer's message\nDefault: Our nightly export has failed");
  assert.equal(bare.options[2].info, "input tone\nHow formal\nRequired: no default.");
  assert.deepEqual(labels(edit("{{ steps.classify.output }}", "{{ inputs.‸ }}")), ["ticket", "product", "tone"]);
  assert.deepEqual(labels(edit("{{ steps.classify.output }}", "{{ env.‸ }}")), ["REGION"]);
  const filters = complete(edit("{{ steps.classify.output }}", "{{ ticket | trim | u‸ }}"));
  assert.deepEqual(filters.options.map((o) => o.label), ["upper", "trim", "default"]);
  assert.equal(filters.options[0].info, "upper case");
  assert.equal(labels(edit("{{ steps.classify.output }}", "{% if ticket | ‸ %}")).length, 3);
  // Not inside a closed tag, nor inside a string in a tag.
  assert.equal(complete(edit("{{ steps.classify.output }}", "{{ ticket }} steps.‸")), null);
  assert.equal(complete(edit("{{ steps.classify.output }}", "{{ ticket | default(\"a | ‸")), null);
  assert.equal(openTag("a {{ b }} {% if c"), " if c");
});

test("without a schema or an outline there is little to offer, and nothing throws", () => {
  const { doc, pos } = cursor(edit("  - name: review\n", "  - name: review\n    pro‸\n"));
  assert.equal(completeAt(doc, pos, null, null), null);
  assert.equal(completeAt(doc, pos, { keys: "nonsense", providers: [null, 3] }, { steps: [{}] }), null);
  assert.equal(complete(edit("{{ steps.classify.output }}", "{{ steps.‸"), null), null);
});
