// Long lines (prompts, mostly) wrap; each wrapped row starts under the line's own text rather than
// at the left edge, so the YAML's indentation still shows its structure. Done per visible line
// with a hanging indent: the line is padded by its indentation and its first row pulled back.

import { RangeSetBuilder } from "@codemirror/state";
import { Decoration, EditorView, ViewPlugin } from "@codemirror/view";

// CodeMirror's own left padding of a line (.cm-line), kept under the hanging indent.
const LINE_PADDING = "6px";
const cache = new Map();

function hanging(columns) {
  let deco = cache.get(columns);
  if (!deco) {
    deco = Decoration.line({
      attributes: { style: `padding-left: calc(${columns}ch + ${LINE_PADDING}); text-indent: -${columns}ch` },
    });
    cache.set(columns, deco);
  }
  return deco;
}

/** Columns of leading space, plus a list item's `- ` so its keys line up under the first. */
function indentOf(text) {
  const match = /^( *)(- +)?/.exec(text);
  return match[1].length + (match[2] ? match[2].length : 0);
}

function build(view) {
  const builder = new RangeSetBuilder();
  for (const { from, to } of view.visibleRanges) {
    for (let pos = from; pos <= to;) {
      const line = view.state.doc.lineAt(pos);
      const columns = indentOf(line.text);
      if (columns > 0 && columns < line.length) builder.add(line.from, line.from, hanging(columns));
      pos = line.to + 1;
    }
  }
  return builder.finish();
}

export const hangingIndent = [
  EditorView.lineWrapping,
  ViewPlugin.define((view) => ({
    decorations: build(view),
    update(update) {
      if (update.docChanged || update.viewportChanged) this.decorations = build(update.view);
    },
  }), { decorations: (plugin) => plugin.decorations }),
];
