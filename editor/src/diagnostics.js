// The validator's problems → CodeMirror diagnostics: located ranges, a message with its hint
// (shown as text, never as markup), and a one-click fix when the validator names a replacement.

import { positionToOffset } from "./positions.js";

const SEVERITIES = new Set(["error", "warning", "info", "hint"]);

// What a problem without an end underlines: the word at its start. A quoted scalar is one token
// (quotes included); otherwise a run of anything that is not YAML punctuation or space, which
// covers keys, provider names and template references such as `steps.draft.output`.
const TOKEN = /^(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s:,#[\]{}"']+)/;

/** End of the token starting at `from`, or `from` itself when none starts there. */
function tokenEnd(doc, from) {
  const line = doc.lineAt(from);
  const match = TOKEN.exec(line.text.slice(from - line.from));
  return match ? from + match[0].length : from;
}

function textBlock(className, text) {
  const el = document.createElement("div");
  el.className = className;
  el.textContent = text;
  return el;
}

/**
 * One problem as the page reports it — `{line, column, endLine?, endColumn?, severity, message,
 * hint?, suggestion?}` with 1-based lines and character columns — as a CodeMirror diagnostic.
 */
export function toDiagnostic(doc, problem) {
  const from = positionToOffset(doc, problem.line, problem.column);
  const hasEnd = problem.endLine != null && problem.endColumn != null;
  let to = hasEnd ? positionToOffset(doc, problem.endLine, problem.endColumn) : tokenEnd(doc, from);
  if (to < from) to = from;
  // A point is hard to see and to hover: underline the next character when the line has one.
  if (to === from && from < doc.lineAt(from).to) to = from + 1;

  const severity = SEVERITIES.has(problem.severity) ? problem.severity : "error";
  const message = String(problem.message ?? "");
  const hint = problem.hint == null ? "" : String(problem.hint);
  const suggestion = problem.suggestion == null ? "" : String(problem.suggestion);

  const diagnostic = {
    from,
    to,
    severity,
    message: [message, hint, suggestion && `Did you mean \`${suggestion}\`?`].filter(Boolean).join("\n"),
    renderMessage() {
      const box = document.createElement("div");
      box.append(textBlock("cm-studio-message", message));
      if (hint) box.append(textBlock("cm-studio-hint", hint));
      if (suggestion) box.append(textBlock("cm-studio-hint", `Did you mean \`${suggestion}\`?`));
      return box;
    },
  };
  if (suggestion && to > from) {
    const original = doc.sliceString(from, to);
    const quote = /^["']/.test(original) && original.endsWith(original[0]) ? original[0] : "";
    diagnostic.actions = [
      {
        name: `Use ${suggestion}`,
        apply(view, start, end) {
          view.dispatch({
            changes: { from: start, to: end, insert: quote + suggestion + quote },
            userEvent: "input.fix",
          });
        },
      },
    ];
  }
  return diagnostic;
}

/** Every problem as a diagnostic, in document order; anything that is not an object is skipped. */
export function toDiagnostics(doc, problems) {
  if (!Array.isArray(problems)) return [];
  return problems
    .filter((p) => p && typeof p === "object")
    .map((p) => toDiagnostic(doc, p))
    .sort((a, b) => a.from - b.from || a.to - b.to);
}
