// What the word under the pointer is, as plain text for a tooltip: a key's type, default and doc;
// where a template reference comes from (an input's description and default, a step's line and
// provider/model, an env name); a filter's doc; a provider's kind and models; the step a
// `depends_on` names. A pure function of the text, the position, the schema and the outline.

import { wordAround } from "./words.js";
import { containerPath, inDependsOnList, placeOf, shapeOf } from "./places.js";
import { describeKey, describeProvider, describeStep, readOutline, readSchema } from "./knowledge.js";
import { describeInput, openTag } from "./completion.js";

const PLACES = { top: "top level", defaults: "defaults", step: "step", retry: "retry", input: "input" };

function stepText(outline, name) {
  const step = outline.byName.get(name);
  return step ? describeStep(step) : `no step named ${name} (as of the last check)`;
}

/** Where the template reference `word` (`topic`, `inputs.topic`, `env.K`, `steps.X.output`) comes from. */
function referenceText(word, outline) {
  const [head, name] = word.split(".");
  if (head === "steps" && name) return stepText(outline, name);
  if (head === "env" && name) {
    if (outline.env.includes(name)) return `env ${name} (set in the file's env)`;
    return `env ${name} is not declared under env:`;
  }
  const inputName = head === "inputs" && name ? name : head;
  const input = outline.inputs.find((i) => i.name === inputName);
  return input ? describeInput(input) : null;
}

function keyText(key, place) {
  return `${key.name} (${PLACES[place] ?? place})\n${describeKey(key)}`;
}

/** The text about the value `word` of `key` in a mapping of `place`, or null. */
function valueText(key, place, word, known, outline) {
  if (key === "provider" && (place === "step" || place === "defaults")) {
    const provider = known.providers.get(word);
    return provider ? describeProvider(provider) : `provider ${word} is not configured on this server`;
  }
  if (key === "depends_on" && place === "step") return stepText(outline, word);
  return null;
}

/**
 * The hover text about the character at offset `pos` of `doc` (a CodeMirror `Text`):
 * `{from, to, text}` (the word it is about and what to say), or null.
 */
export function hoverAt(doc, pos, schema, outline) {
  const word = wordAround(doc, pos, 1);
  if (!word) return null;
  const line = doc.lineAt(pos);
  const start = word.from - line.from;
  const before = line.text.slice(0, start);
  const rest = line.text.slice(word.to - line.from);
  const known = readSchema(schema);
  const steps = readOutline(outline);
  const answer = (text) => (text ? { from: word.from, to: word.to, text } : null);

  const expression = openTag(before);
  if (expression != null) {
    if (/\|\s*$/.test(expression)) {
      const filter = known.filters.find((f) => f.name === word.text);
      return answer(filter && `filter ${filter.name}: ${filter.doc}`);
    }
    return answer(referenceText(word.text, steps));
  }

  const shape = shapeOf(line.text);
  if (!shape) return null;
  const path = containerPath(doc, line.number, shape);
  const isKey = /^\s*:(\s|$)/.test(rest);
  if (shape.key != null && start === shape.col && isKey) {
    const place = placeOf(path);
    const key = known.keys.get(place)?.find((k) => k.name === word.text);
    return answer(key && keyText(key, place));
  }
  if (shape.key != null && start > shape.col) {
    const place = placeOf(path);
    const inFlow = /[{,]\s*["']?([\w-]+)["']?\s*:\s*["']?$/.exec(before);
    if (shape.value.startsWith("{")) {
      // A one-line flow mapping: `defaults: { provider: simulated }`.
      const inner = placeOf([...path, { kind: "key", name: shape.key, value: "" }]);
      if (isKey && /[{,]\s*$/.test(before)) {
        const key = known.keys.get(inner)?.find((k) => k.name === word.text);
        return answer(key && keyText(key, inner));
      }
      return inFlow ? answer(valueText(inFlow[1], inner, word.text, known, steps)) : null;
    }
    return answer(valueText(shape.key, place, word.text, known, steps));
  }
  // An item of a step's `depends_on:` list.
  if (shape.key == null && shape.dashes.length > 0 && start === shape.col && inDependsOnList(path)) {
    return answer(stepText(steps, word.text));
  }
  return null;
}
