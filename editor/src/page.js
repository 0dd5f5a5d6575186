// The editor as the Rust page uses it. The page's code runs in a lazily loaded WASM chunk, where
// a JavaScript callback into WASM (a wasm-bindgen Closure) is fragile, so nothing here calls the
// page: the page calls in through a global, and hears back through DOM events on the element it
// gave, which it listens to like any other DOM event. Completion and hover are answered here, from
// the schema and the latest outline the page hands over.
//
// Loading this file (served at /editor/studio-editor.js) sets
//   window.pipescopeEditor = { open }
// and then fires `pipescope-editor-ready` on window (a page that arrives later finds the global).
//
//   const editor = pipescopeEditor.open(parent, { doc, dark, maxBytes, schema });
//     schema: the server's EditorSchema JSON {keys: [{place, name, kind, default, doc}],
//             providers: [{name, kind, models}], filters: [[name, doc]], max_bytes};
//     maxBytes: the size limit in UTF-8 bytes (default: schema.max_bytes).
//   editor.setDiagnostics([{line, column, message, suggestion}])   1-based, suggestion may be null
//   editor.setOutline({name, steps: [{name, line, depends_on, provider, model}], cycle,
//                      inputs: [{name, description, default}], env})
//   editor.setTheme(dark); editor.getText(); editor.setText(text); editor.goto(line, column);
//   editor.focus(); editor.destroy();
// schema, problems and outline may also be given as their JSON text.
//
// Events on `parent` (CustomEvent, not bubbling):
//   pipescope-change    {text}          after every change of the text (typing, undo, setText);
//                                        not debounced: the page debounces
//   pipescope-too-large {bytes, max}    a change was refused: the text would have been `bytes` long
//   pipescope-save      {draft: false}  Ctrl+S / Cmd+S in the editor (the browser's save is
//                                        prevented)

import { mount } from "./studio-editor.js";
import { completeAt } from "./completion.js";
import { hoverAt } from "./hover.js";

function emit(parent, type, detail) {
  parent.dispatchEvent(new CustomEvent(type, { detail, bubbles: false }));
}

/** Ctrl+S, or Cmd+S on a Mac, without other modifiers. */
function isSave(event) {
  return (event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && event.key.toLowerCase() === "s";
}

/** A value the page may pass as an object or as its JSON text (what serde_json writes). */
function fromJson(value) {
  if (typeof value !== "string") return value ?? null;
  try {
    return JSON.parse(value);
  } catch (error) {
    console.error("studio editor: the page passed text that is not JSON", error);
    return null;
  }
}

function open(parent, { doc = "", dark = true, maxBytes, schema: given = null } = {}) {
  const schema = fromJson(given);
  const max = Number.isFinite(maxBytes) && maxBytes > 0 ? maxBytes : Number(schema?.max_bytes);
  let outline = null;
  const editor = mount(parent, {
    doc,
    dark,
    label: "Pipeline YAML",
    maxBytes: max,
    onChange: (text) => emit(parent, "pipescope-change", { text }),
    onTooLarge: (bytes) => emit(parent, "pipescope-too-large", { bytes, max }),
    complete: (context) => completeAt(context.doc, context.pos, schema, outline),
    hover: (context) => hoverAt(context.doc, context.pos, schema, outline),
  });
  // On the parent, so it also covers the search panel's fields inside the editor.
  const onKey = (event) => {
    if (!isSave(event)) return;
    event.preventDefault();
    emit(parent, "pipescope-save", { draft: false });
  };
  parent.addEventListener("keydown", onKey);

  return {
    setDiagnostics: (problems) => editor.setDiagnostics(fromJson(problems)),
    /** The outline of the latest check: completion and hover read it from then on. */
    setOutline(next) {
      const read = fromJson(next);
      outline = read && typeof read === "object" ? read : null;
    },
    setTheme: (isDark) => editor.setTheme(isDark),
    getText: () => editor.getText(),
    setText: (text) => editor.setText(text),
    goto: (line, column) => editor.goto(line, column),
    focus: () => editor.focus(),
    destroy() {
      parent.removeEventListener("keydown", onKey);
      editor.destroy();
    },
  };
}

window.pipescopeEditor = { open };
window.dispatchEvent(new Event("pipescope-editor-ready"));
