// Hover texts: a key's type, default and doc by place; where a template reference comes from; a
// filter; a provider; a step named in depends_on. Always text, for the tooltip's textContent.
import { test } from "node:test";
import assert from "node:assert/strict";

import { hoverAt } from "../src/hover.js";
import { cursor, edit, outline, schema, triage } from "../test-support/pipeline.mjs";

/** The hover over the character right after ‸. */
function hover(text, given = outline) {
  const { doc, pos } = cursor(text);
  const result = hoverAt(doc, pos, schema, given);
  return result && { ...result, word: doc.sliceString(result.from, result.to) };
}

const over = (find, at = 0) => hover(edit(find, find.slice(0, at) + "‸" + find.slice(at)));

test("a key: its place, type, default and doc", () => {
  assert.deepEqual(over("max_parallel: 2", 3), {
    from: triage.indexOf("max_parallel"),
    to: triage.indexOf("max_parallel") + "max_parallel".length,
    text: "max_parallel (top level)\nwhole number from 1 to 64\nDefault: 4\nHow many steps of one run may run at the same time.",
    word: "max_parallel",
  });
  assert.equal(over("  provider: simulated", 2).text, "provider (defaults)\nprovider name configured on the server\nDefault: simulated\nWhere steps that name no provider send their prompt.");
  assert.equal(over("    depends_on: classify", 4).text, "depends_on (step)\na step name, or a list of them\nSteps that must finish first.");
  assert.equal(over("  - name: classify", 4).text, "name (step)\n`[A-Za-z_][A-Za-z0-9_]*`, unique\nRequired.\nHow other steps refer to it.");
  assert.equal(over("    description: The customer's message", 4).text, "description (input)\ntext\nWhat the input is for.");
  assert.equal(hover("defaults: { ‸provider: openai }").text.split("\n")[0], "provider (defaults)");
});

test("no key text where there is no such key, and none in a prompt", () => {
  assert.equal(over("  product: pipescope Cloud", 2), null, "an input's name is not a key");
  assert.equal(over("      Facts: {{", 6), null, "a prompt line that looks like a key");
  assert.equal(hover("bogus: 1\n‸colour: red"), null);
});

test("a step reference: output of the step, its line and provider/model", () => {
  assert.equal(over("{{ steps.classify.output }}", 5).text, "output of step classify, line 18, simulated/sim-small");
  assert.equal(over("{{ steps.draft_reply.output }}", 20).text, "output of step draft_reply, line 25, simulated/sim-small");
  assert.equal(over("{{ steps.draft_reply.output }}", 20).word, "steps.draft_reply.output");
  assert.equal(hover(edit("{{ steps.classify.output }}", "{{ ‸steps.nope.output }}")).text, "no step named nope (as of the last check)");
  // Without an outline yet, the step is not known.
  assert.equal(hover(edit("{{ steps.classify.output }}", "{{ ‸steps.classify.output }}"), null).text, "no step named classify (as of the last check)");
});

test("an input or env reference: its description and default, or where it is set", () => {
  assert.equal(over("{{ ticket }}\n  - name: draft_reply", 4).text, "input ticket\nThe customer's message\nDefault: Our nightly export has failed");
  assert.equal(over("{{ product }}", 3).text, "input product\nDefault: pipescope Cloud");
  assert.equal(hover(edit("{{ product }}", "{{ inputs.‸tone }}")).text, "input tone\nHow formal\nRequired: no default.");
  assert.equal(hover(edit("{{ product }}", "{{ env.RE‸GION }}")).text, "env REGION (set in the file's env)");
  assert.equal(hover(edit("{{ product }}", "{{ env.‸NOPE }}")).text, "env NOPE is not declared under env:");
  assert.equal(hover(edit("{{ product }}", "{{ ‸range(3) }}")), null, "a built-in global, not an input");
});

test("a filter, a provider, and a step named in depends_on", () => {
  assert.equal(hover(edit("{{ product }}", "{{ product | ‸upper }}")).text, "filter upper: upper case");
  assert.equal(over("  provider: simulated", 13).text, "provider simulated (simulated)\nmodels: sim-small, sim-large");
  assert.equal(hover(edit("  provider: simulated", "  provider: ‸anthropic")).text, "provider anthropic is not configured on this server");
  assert.equal(hover("defaults: { provider: ‸openai }").text, "provider openai (openai)\nmodels: gpt-4o, gpt-4o-mini");
  assert.equal(over("    depends_on: classify", 17).text, "output of step classify, line 18, simulated/sim-small");
  assert.equal(hover(edit("    depends_on: classify", "    depends_on:\n      - ‸classify")).text, "output of step classify, line 18, simulated/sim-small");
  // A model or a prompt's words say nothing.
  assert.equal(over("    model: sim-large", 12), null);
  assert.equal(over("      Answer with", 8), null);
});

test("markup in names stays text", () => {
  const hostile = { ...outline, inputs: [{ name: "x", description: "<img src=x onerror=alert(1)>", default: "<b>" }] };
  assert.equal(hover("steps:\n  - prompt: {{ ‸x }}", hostile).text, "input x\n<img src=x onerror=alert(1)>\nDefault: <b>");
});
