// The pipeline studio's YAML editor: CodeMirror 6 behind a small API taking JavaScript callbacks.
// Whoever mounts it owns the text's meaning (validation, completion, hover come through the
// callbacks); this module owns editing. The Rust page does not call it directly: page.js wraps it
// in an API that needs no callbacks from WASM.
//
//   const editor = mount(parent, {
//     doc, dark, label, placeholder, maxBytes,
//     onChange(text), onTooLarge(bytes),
//     complete(context) -> {from?, options: [{label, type?, detail?, info?, apply?, boost?}]} | null,
//     hover(context) -> {text} | null,
//   });
//   editor.setDiagnostics([{line, column, endLine?, endColumn?, severity, message, hint?, suggestion?}]);
//   editor.setTheme(dark); editor.getText(); editor.setText(text); editor.focus();
//   editor.goto(line, column); editor.destroy();
//
// Lines and columns are 1-based, columns counted in characters, as the validator reports them;
// offsets (`pos`, `from`, `to`) are CodeMirror's (UTF-16 units from the start of the text).
// `complete` and `hover` may return a value or a Promise of one; what they are given:
//   complete: {doc, pos, line, column, explicit, lineBefore, word: {from, to, text}} — the text
//     (CodeMirror's `Text`, not copied), the cursor, whether the user asked (Ctrl-Space) rather
//     than typed, the line's text before the cursor, and the name segment before it (letters,
//     digits, `_`, `-`), which a completion replaces unless the result gives its own `from` (an
//     offset on the cursor's line, at or before the cursor);
//   hover: {doc, pos, line, column, word: {from, to, text}} — the text, the character under the
//     pointer and the word around it (dots included, so `steps.draft.output` is one word); not
//     called over space.

import { Compartment, EditorState, StateField } from "@codemirror/state";
import {
  EditorView, crosshairCursor, drawSelection, dropCursor, highlightActiveLine,
  highlightActiveLineGutter, highlightSpecialChars, hoverTooltip, keymap, lineNumbers,
  placeholder, rectangularSelection,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, foldGutter, foldKeymap, indentOnInput, indentUnit } from "@codemirror/language";
import { yaml } from "@codemirror/lang-yaml";
import { lintGutter, nextDiagnostic, previousDiagnostic, setDiagnostics } from "@codemirror/lint";
import { acceptCompletion, autocompletion, closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { highlightSelectionMatches, search, searchKeymap } from "@codemirror/search";

import { offsetToPosition, positionToOffset } from "./positions.js";
import { toDiagnostics } from "./diagnostics.js";
import { studioTheme } from "./theme.js";
import { templateMarks } from "./templates.js";
import { hangingIndent } from "./wrapping.js";
import { SEGMENT, SEGMENT_ONLY, wordAround } from "./words.js";
import { byteLength, textByteLength } from "./bytes.js";

/** Calls a page callback, never letting its failure break the editor. */
async function ask(name, callback, argument) {
  try {
    return await callback(argument);
  } catch (error) {
    console.error(`studio editor: the ${name} callback failed`, error);
    return null;
  }
}

function describePosition(doc, pos) {
  const { line, column } = offsetToPosition(doc, pos);
  return { pos, line, column };
}

function completionSource(complete) {
  return async (context) => {
    const word = context.matchBefore(SEGMENT) ?? { from: context.pos, to: context.pos, text: "" };
    const line = context.state.doc.lineAt(context.pos);
    const result = await ask("complete", complete, {
      doc: context.state.doc,
      ...describePosition(context.state.doc, context.pos),
      explicit: context.explicit,
      lineBefore: line.text.slice(0, context.pos - line.from),
      word: { from: word.from, to: word.to, text: word.text },
    });
    if (!result || !Array.isArray(result.options) || result.options.length === 0) return null;
    const from = Number.isInteger(result.from) && result.from >= line.from && result.from <= context.pos
      ? result.from
      : word.from;
    return {
      from,
      options: result.options
        .filter((o) => o && o.label != null)
        .map((o) => ({
          label: String(o.label),
          type: o.type == null ? undefined : String(o.type),
          detail: o.detail == null ? undefined : String(o.detail),
          // A string is shown as text by CodeMirror, so markup in a description stays inert.
          info: o.info == null ? undefined : String(o.info),
          apply: o.apply == null ? undefined : String(o.apply),
          boost: Number.isFinite(o.boost) ? o.boost : undefined,
        })),
      validFor: SEGMENT_ONLY,
    };
  };
}

function hoverSource(hover) {
  return hoverTooltip(async (view, pos, side) => {
    const word = wordAround(view.state.doc, pos, side);
    if (!word) return null;
    const under = side < 0 ? pos - 1 : pos;
    const result = await ask("hover", hover, { doc: view.state.doc, ...describePosition(view.state.doc, under), word });
    if (!result || result.text == null || result.text === "") return null;
    return {
      pos: word.from,
      end: word.to,
      above: true,
      create() {
        const dom = document.createElement("div");
        dom.className = "cm-studio-hover";
        dom.textContent = String(result.text);
        return { dom };
      },
    };
  }, { hoverTime: 350 });
}

/**
 * Refuses any change that would make the text larger than `maxBytes` in UTF-8, and tells the page
 * (after the refused update, so it may call back into the editor). A text that is already larger
 * (given at mount) may still be edited down. The byte count is kept up to date from each change's
 * own size, so a keystroke costs the same in a large file as in a small one.
 */
function sizeLimit(maxBytes, onTooLarge) {
  const size = StateField.define({
    create: (state) => textByteLength(state.doc),
    update(bytes, tr) {
      return tr.docChanged ? bytes + byteDelta(tr) : bytes;
    },
  });
  const byteDelta = (tr) => {
    let delta = 0;
    tr.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
      delta += textByteLength(inserted) - byteLength(tr.startState.sliceDoc(fromA, toA));
    });
    return delta;
  };
  const guard = EditorState.transactionFilter.of((tr) => {
    if (!tr.docChanged) return tr;
    const before = tr.startState.field(size);
    const after = before + byteDelta(tr);
    if (after <= maxBytes || after <= before) return tr;
    if (onTooLarge) setTimeout(() => onTooLarge(after), 0);
    return [];
  });
  return [size, guard];
}

/**
 * The nonce of the page's Content-Security-Policy: pipescope puts it on the page's scripts, and
 * a script element keeps it readable to scripts (`.nonce`) while hiding the attribute.
 */
function pageNonce() {
  return (typeof document !== "undefined" && document.querySelector("script[nonce]")?.nonce) || "";
}

/**
 * Creates the editor inside `parent` and returns its handle. Options (all optional):
 * `doc` the initial text; `dark` (default true) which theme; `label` the accessible name;
 * `placeholder` shown while empty; `maxBytes` with `onTooLarge(bytes)` a size limit;
 * `onChange(text)` after every change of the text (typing, undo, setText);
 * `complete(context)` and `hover(context)` as described at the top of this file;
 * `nonce` the page's CSP nonce for the editor's <style> element (default: the page scripts' own).
 */
export function mount(parent, options = {}) {
  if (!parent || typeof parent.appendChild !== "function") {
    throw new TypeError("studio editor: mount needs the DOM element to put the editor in");
  }
  const { doc = "", dark = true, label = "Pipeline YAML", onChange, onTooLarge, complete, hover } = options;
  const theme = new Compartment();

  const nonce = options.nonce ?? pageNonce();
  const extensions = [
    // CodeMirror puts its styles in a <style> element, which the page's Content-Security-Policy
    // allows only with the page's nonce.
    ...(nonce ? [EditorView.cspNonce.of(nonce)] : []),
    // Problem markers left of the numbers, fold markers between them and the text.
    lintGutter(),
    lineNumbers(),
    foldGutter(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    drawSelection(),
    dropCursor(),
    EditorState.allowMultipleSelections.of(true),
    indentOnInput(),
    bracketMatching(),
    closeBrackets(),
    rectangularSelection(),
    crosshairCursor(),
    highlightActiveLine(),
    highlightSelectionMatches(),
    search({ top: true }),
    // YAML forbids tabs in indentation: Tab inserts two spaces.
    indentUnit.of("  "),
    EditorState.tabSize.of(2),
    // Prompts are long lines; wrapping keeps them readable without scrolling sideways.
    hangingIndent,
    yaml(),
    templateMarks,
    theme.of(studioTheme(dark)),
    EditorView.contentAttributes.of({ "aria-label": String(label) }),
    // Tab indents (CodeMirror's own escape hatch: Escape, then Tab, moves focus on; Ctrl-M
    // toggles it), or accepts the selected completion when the list is open.
    keymap.of([
      { key: "Tab", run: acceptCompletion },
      ...closeBracketsKeymap,
      ...defaultKeymap,
      ...searchKeymap,
      ...historyKeymap,
      ...foldKeymap,
      { key: "F8", run: nextDiagnostic },
      { key: "Shift-F8", run: previousDiagnostic },
      indentWithTab,
    ]),
    autocompletion({
      override: typeof complete === "function" ? [completionSource(complete)] : [],
    }),
  ];
  if (typeof hover === "function") extensions.push(hoverSource(hover));
  if (options.placeholder) extensions.push(placeholder(String(options.placeholder)));
  if (Number.isFinite(options.maxBytes) && options.maxBytes > 0) {
    extensions.push(sizeLimit(options.maxBytes, typeof onTooLarge === "function" ? onTooLarge : null));
  }
  if (typeof onChange === "function") {
    extensions.push(EditorView.updateListener.of((update) => {
      if (!update.docChanged) return;
      try {
        onChange(update.state.doc.toString());
      } catch (error) {
        console.error("studio editor: the onChange callback failed", error);
      }
    }));
  }

  let view = new EditorView({ parent, state: EditorState.create({ doc: String(doc ?? ""), extensions }) });
  let lastText = null;

  return {
    /** Problems to underline, replacing the previous ones; see diagnostics.js for the fields. */
    setDiagnostics(problems) {
      if (!view) return;
      view.dispatch(setDiagnostics(view.state, toDiagnostics(view.state.doc, problems)));
    },
    /** Switches between the dark (true) and light (false) theme. */
    setTheme(isDark) {
      if (!view) return;
      view.dispatch({ effects: theme.reconfigure(studioTheme(isDark)) });
    },
    getText() {
      return view ? view.state.doc.toString() : lastText;
    },
    /** Replaces the whole text as one undoable change; the same text again changes nothing. */
    setText(text) {
      if (!view) return;
      const next = String(text ?? "");
      if (next === view.state.doc.toString()) return;
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: next }, userEvent: "set" });
    },
    focus() {
      view?.focus();
    },
    /** Puts the cursor at a 1-based line and character column (clamped), scrolled into the middle. */
    goto(line, column = 1) {
      if (!view) return;
      const pos = positionToOffset(view.state.doc, line, column);
      view.dispatch({ selection: { anchor: pos }, effects: EditorView.scrollIntoView(pos, { y: "center" }) });
      view.focus();
    },
    /** Removes the editor from the page; the handle then answers getText() with the last text. */
    destroy() {
      if (!view) return;
      lastText = view.state.doc.toString();
      view.destroy();
      view = null;
    },
  };
}
