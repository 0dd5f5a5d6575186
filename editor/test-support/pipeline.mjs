// Shared by the tests in test/ (kept outside it: `node --test test/` runs every module there).
// A schema as the server sends it (the validator's key tables, trimmed to what the tests ask
// about, with their real kinds and defaults), the support-triage example and its outline.
import { readFileSync } from "node:fs";
import { Text } from "@codemirror/state";

const key = (place, name, kind, def, doc) => ({ place, name, kind, default: def, doc });

export const schema = {
  keys: [
    key("top", "name", "text: letters, digits, `-`, `_` (≤ 100 characters)", "required", "The pipeline's name."),
    key("top", "description", "text", null, "What the pipeline is for."),
    key("top", "defaults", "mapping of provider, model, max_tokens, temperature, timeout_ms, retry", "each key's own default", "Values every step uses unless it sets its own."),
    key("top", "inputs", "mapping: input name → spec", null, "Values given when a run starts."),
    key("top", "env", "mapping: name → text", null, "Deployment values."),
    key("top", "max_parallel", "whole number from 1 to 64", "4", "How many steps of one run may run at the same time."),
    key("top", "steps", "non-empty list of steps", "required", "The steps; each sends a prompt to a model."),
    key("defaults", "provider", "provider name configured on the server", "simulated", "Where steps that name no provider send their prompt."),
    key("defaults", "model", "text", "sim-small", "The model of steps that name none."),
    key("defaults", "max_tokens", "whole number ≥ 1", "512", "Completion length limit of steps that set none."),
    key("defaults", "retry", "mapping of attempts, backoff_ms, max_backoff_ms", "each key's own default", "Retries of steps that set none."),
    key("step", "name", "`[A-Za-z_][A-Za-z0-9_]*`, unique", "required", "How other steps refer to it."),
    key("step", "provider", "provider name configured on the server", "`defaults.provider`", "Where the prompt is sent."),
    key("step", "model", "text", "`defaults.model`", "The provider's model name."),
    key("step", "system", "template", null, "System prompt."),
    key("step", "prompt", "template", "required", "The prompt."),
    key("step", "temperature", "number from 0 to 2", "`defaults.temperature`", "Sampling temperature."),
    key("step", "retry", "mapping of attempts, backoff_ms, max_backoff_ms", "`defaults.retry`", "Retries."),
    key("step", "depends_on", "a step name, or a list of them", null, "Steps that must finish first."),
    key("retry", "attempts", "whole number from 1 to 10", "3", "Total tries including the first (`1` = no retry)."),
    key("retry", "backoff_ms", "whole number ≥ 0", "500", "Wait before the first retry."),
    key("retry", "max_backoff_ms", "whole number ≥ 0", "30000", "Upper bound for one wait."),
    key("input", "description", "text", null, "What the input is for."),
    key("input", "default", "any value", null, "The value used when a run does not give one."),
  ],
  providers: [
    { name: "simulated", kind: "simulated", models: ["sim-small", "sim-large"] },
    { name: "openai", kind: "openai", models: ["gpt-4o", "gpt-4o-mini"] },
  ],
  filters: [["upper", "upper case"], ["trim", "whitespace removed at both ends"], ["default", "this value when the variable is undefined"]],
  max_bytes: 1048576,
};

export const triage = readFileSync(new URL("../../pipelines/support-triage.yaml", import.meta.url), "utf8");

// What the validator's check gives for support-triage.yaml (its lines as in the file).
export const outline = {
  name: "support-triage",
  steps: [
    { name: "classify", line: 18, depends_on: [], provider: "simulated", model: "sim-small" },
    { name: "draft_reply", line: 25, depends_on: ["classify"], provider: "simulated", model: "sim-small" },
    { name: "extract_facts", line: 32, depends_on: ["classify"], provider: "simulated", model: "sim-small" },
    { name: "review", line: 39, depends_on: ["draft_reply", "extract_facts"], provider: "simulated", model: "sim-large" },
  ],
  cycle: [],
  inputs: [
    { name: "ticket", description: "The customer's message", default: "Our nightly export has failed" },
    { name: "product", description: null, default: "pipescope Cloud" },
    { name: "tone", description: "How formal", default: null },
  ],
  env: ["REGION"],
};

/** `text` with the cursor marker `‸` taken out: the document and the cursor's offset. */
export function cursor(text) {
  const pos = text.indexOf("‸");
  if (pos < 0 || text.indexOf("‸", pos + 1) >= 0) throw new Error("put exactly one ‸ in the text");
  return { doc: Text.of(text.replace("‸", "").split("\n")), pos };
}

/** `triage` with `find` replaced by `replace` (which must occur exactly once). */
export function edit(find, replace, text = triage) {
  const at = text.indexOf(find);
  if (at < 0 || text.indexOf(find, at + 1) >= 0) throw new Error(`\`${find}\` is not in the text exactly once`);
  return text.slice(0, at) + replace + text.slice(at + find.length);
}
