// What completion and hover know besides the text: the server's schema (the validator's keys by
// place, the configured providers and their models, the template filters) and the outline of the
// last check (steps with their lines and dependencies, inputs, env names). Both arrive as JSON
// from the page and may be missing or partial; everything here reads them defensively.

const schemas = new WeakMap();
const outlines = new WeakMap();

const text = (value) => (value == null ? "" : String(value));
const list = (value) => (Array.isArray(value) ? value : []);

/** The schema (Rust `EditorSchema`) indexed: `keys` by place, `providers` by name, `filters`. */
export function readSchema(schema) {
  if (!schema || typeof schema !== "object") return readSchema({});
  let read = schemas.get(schema);
  if (read) return read;
  const keys = new Map();
  for (const key of list(schema.keys)) {
    if (!key || key.name == null) continue;
    const place = text(key.place);
    if (!keys.has(place)) keys.set(place, []);
    keys.get(place).push({
      name: text(key.name),
      kind: text(key.kind),
      default: key.default == null ? null : text(key.default),
      doc: text(key.doc),
    });
  }
  const providers = new Map();
  for (const provider of list(schema.providers)) {
    if (!provider || provider.name == null) continue;
    providers.set(text(provider.name), {
      name: text(provider.name),
      kind: text(provider.kind),
      models: list(provider.models).map(text),
    });
  }
  const filters = list(schema.filters)
    .filter((f) => Array.isArray(f) && f[0] != null)
    .map(([name, doc]) => ({ name: text(name), doc: text(doc) }));
  read = { keys, providers, filters };
  schemas.set(schema, read);
  return read;
}

/** The outline (Rust `Check`'s name, steps, cycle, inputs, env) indexed by step name. */
export function readOutline(outline) {
  if (!outline || typeof outline !== "object") return readOutline({});
  let read = outlines.get(outline);
  if (read) return read;
  const steps = list(outline.steps)
    .filter((s) => s && s.name != null)
    .map((s) => ({
      name: text(s.name),
      line: Number.isFinite(s.line) ? s.line : null,
      dependsOn: list(s.depends_on).map(text),
      provider: text(s.provider),
      model: text(s.model),
    }));
  read = {
    steps,
    byName: new Map(steps.map((s) => [s.name, s])),
    inputs: list(outline.inputs)
      .filter((i) => i && i.name != null)
      .map((i) => ({
        name: text(i.name),
        description: i.description == null ? null : text(i.description),
        default: i.default,
      })),
    env: list(outline.env).map(text),
    // Step name → the steps that wait for it, built when first asked (see `dependents`).
    waiting: null,
  };
  outlines.set(outline, read);
  return read;
}

/** The steps that depend on `name`, directly or through others. */
function dependents(outline, name) {
  if (!outline.waiting) {
    // Who waits for whom, built once per outline: the walk is then linear in the graph's size.
    outline.waiting = new Map();
    for (const step of outline.steps) {
      for (const dependency of step.dependsOn) {
        if (!outline.waiting.has(dependency)) outline.waiting.set(dependency, []);
        outline.waiting.get(dependency).push(step.name);
      }
    }
  }
  const found = new Set();
  const queue = [name];
  while (queue.length > 0) {
    for (const waiting of outline.waiting.get(queue.pop()) ?? []) {
      if (!found.has(waiting)) {
        found.add(waiting);
        queue.push(waiting);
      }
    }
  }
  return found;
}

/**
 * The steps the step `self` (`{name, line}`, either may be null) may refer to without making a
 * cycle: not itself, and none that depends on it, directly or transitively. With `earlierOnly`,
 * also only the steps above it, as a template reference must be (the validator refuses a later
 * step's output; `depends_on` may name any step).
 */
export function referableSteps(outline, self, { earlierOnly = false } = {}) {
  const name = self?.name ?? null;
  const blocked = name == null ? new Set() : dependents(outline, name);
  if (name != null) blocked.add(name);
  let candidates = outline.steps;
  if (earlierOnly) {
    const index = name == null ? -1 : outline.steps.findIndex((s) => s.name === name);
    if (index >= 0) candidates = candidates.slice(0, index);
    else if (Number.isFinite(self?.line)) candidates = candidates.filter((s) => s.line != null && s.line < self.line);
  }
  return candidates.filter((s) => !blocked.has(s.name));
}

/** Where a step's output comes from: "output of step NAME, line N, provider/model". */
export function describeStep(step) {
  const where = step.line == null ? "" : `, line ${step.line}`;
  return `output of step ${step.name}${where}${target(step) ? `, ${target(step)}` : ""}`;
}

/** `provider/model` of an outline step, or whichever half is known. */
export function target(step) {
  return [step.provider, step.model].filter(Boolean).join("/");
}

/** A JSON default as a reader would write it in YAML: text as is, anything else as JSON. */
export function showValue(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A key's type, default and doc as completion's info and hover show them (text, several lines). */
export function describeKey(key) {
  const lines = [key.kind];
  if (key.default === "required") lines.push("Required.");
  else if (key.default != null) lines.push(`Default: ${key.default}`);
  if (key.doc) lines.push(key.doc);
  return lines.join("\n");
}

/** A provider's kind and models as completion's info and hover show them. */
export function describeProvider(provider) {
  const models = provider.models.length > 0 ? provider.models.join(", ") : "none listed (any model name it accepts)";
  return `provider ${provider.name} (${provider.kind})\nmodels: ${models}`;
}
