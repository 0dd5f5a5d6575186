// What a completion replaces and what a hover is about, in the pipeline language's terms.

// A name segment: letters, digits, `_` and `-`, not starting with `-` (that is a list item's dash).
// Dots separate segments, so after `steps.` the step names are completed.
export const SEGMENT = /(?:[A-Za-z0-9_][A-Za-z0-9_-]*)?/;
export const SEGMENT_ONLY = /^(?:[A-Za-z0-9_][A-Za-z0-9_-]*)?$/;

const WORD_CHAR = /[A-Za-z0-9_.-]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/**
 * The word around `pos` in `doc` (a key, a name or a whole template reference such as
 * `steps.draft.output`), or null when the character under the pointer is not part of one.
 * `side` says which character that is: the one before `pos` (-1) or after it (1).
 */
export function wordAround(doc, pos, side) {
  const line = doc.lineAt(pos);
  const at = pos - line.from;
  let start = at;
  let end = at;
  while (start > 0 && WORD_CHAR.test(line.text[start - 1])) start--;
  while (end < line.text.length && WORD_CHAR.test(line.text[end])) end++;
  if ((side < 0 && start === at) || (side > 0 && end === at)) return null;
  const text = line.text.slice(start, end);
  // A list item's `-` or a lone `.` is punctuation, not a word.
  if (!NAME_CHAR.test(text)) return null;
  return { from: line.from + start, to: line.from + end, text };
}
