// Jinja inside YAML: the YAML grammar sees `{{ steps.draft.output }}` as part of a plain scalar,
// so the tags are marked separately, one line at a time and only in the visible part.

import { Decoration, MatchDecorator, ViewPlugin } from "@codemirror/view";

const decorator = new MatchDecorator({
  regexp: /\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}/g,
  decoration: Decoration.mark({ class: "cm-studio-template" }),
});

export const templateMarks = ViewPlugin.define((view) => ({
  decorations: decorator.createDeco(view),
  update(update) {
    this.decorations = decorator.updateDeco(update, this.decorations);
  },
}), { decorations: (plugin) => plugin.decorations });
