// The editor's dark and light themes, drawn from the dashboard's own custom properties
// (style/main.css: --bg, --surface*, --border*, --text*, --accent*, --ok/--warn/--bad, --mono), so
// the editor follows the page's `data-theme`. Each variable carries a fallback from the same
// palette, for a page that does not load main.css. The dark flag matters to CodeMirror too: its
// base styles pick their defaults from it.

import { EditorView } from "@codemirror/view";
import { HighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { tags as t } from "@lezer/highlight";

const PALETTES = {
  dark: {
    bg: "#0b0f17", surface: "#121826", "surface-2": "#182033", "surface-3": "#1f2940",
    border: "#263149", "border-strong": "#34415e",
    text: "#e6eaf2", "text-2": "#a9b3c7", "text-3": "#6f7b93",
    accent: "#5eead4", "accent-2": "#818cf8",
    ok: "#34d399", warn: "#fbbf24", bad: "#f87171",
  },
  light: {
    bg: "#f5f7fb", surface: "#ffffff", "surface-2": "#f0f3f9", "surface-3": "#e6ebf4",
    border: "#dde3ee", "border-strong": "#c5cedf",
    text: "#111827", "text-2": "#4b5563", "text-3": "#7b8495",
    accent: "#0d9488", "accent-2": "#4f46e5",
    ok: "#34d399", warn: "#fbbf24", bad: "#f87171",
  },
};

const MONO = 'ui-monospace, "JetBrains Mono", "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace';

/** `var(--name, fallback)` for one palette. */
function vars(palette) {
  return (name) => `var(--${name}, ${palette[name]})`;
}

function mix(colour, percent, other = "transparent") {
  return `color-mix(in srgb, ${colour} ${percent}%, ${other})`;
}

function editorTheme(dark) {
  const v = vars(dark ? PALETTES.dark : PALETTES.light);
  const underline = (role) => ({
    backgroundImage: "none",
    textDecoration: `underline wavy ${v(role)}`,
    textDecorationSkipInk: "none",
    textUnderlineOffset: "3px",
  });
  const marker = (role) => ({
    content: "normal",
    width: "8px",
    height: "8px",
    margin: "5px auto 0",
    borderRadius: "50%",
    backgroundColor: v(role),
  });

  return EditorView.theme(
    {
      "&": { color: v("text"), backgroundColor: v("surface"), fontSize: "13px", height: "100%" },
      // Keyboard users see where focus is: a ring inside the box (a parent's overflow cannot clip
      // it), drawn over the gutters and panels (z-index 200, 300) and under tooltips (500).
      "&.cm-focused": { outline: "none" },
      "&.cm-focused::after": {
        content: '""', position: "absolute", inset: "0", pointerEvents: "none", zIndex: "400",
        border: `1px solid ${mix(v("accent"), 55)}`, borderRadius: "inherit",
      },
      ".cm-scroller": { fontFamily: `var(--mono, ${MONO})`, lineHeight: "1.6" },
      ".cm-content": { caretColor: v("accent"), padding: "6px 0" },
      ".cm-cursor, .cm-dropCursor": { borderLeft: `2px solid ${v("accent")}` },
      "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, .cm-content ::selection":
        { backgroundColor: mix(v("accent-2"), dark ? 32 : 22) },
      ".cm-activeLine": { backgroundColor: mix(v("surface-3"), dark ? 45 : 60) },
      ".cm-selectionMatch": { backgroundColor: mix(v("accent-2"), 16) },
      ".cm-searchMatch": { backgroundColor: mix(v("warn"), 22), outline: `1px solid ${mix(v("warn"), 55)}` },
      ".cm-searchMatch.cm-searchMatch-selected": { backgroundColor: mix(v("accent"), 35) },
      "&.cm-focused .cm-matchingBracket": { backgroundColor: mix(v("accent"), 22), outline: `1px solid ${mix(v("accent"), 60)}` },
      "&.cm-focused .cm-nonmatchingBracket": { backgroundColor: mix(v("bad"), 30) },
      ".cm-placeholder": { color: v("text-3") },

      ".cm-gutters": { backgroundColor: v("surface"), color: v("text-3"), border: "none", borderRight: `1px solid ${v("border")}` },
      ".cm-lineNumbers .cm-gutterElement": { padding: "0 8px 0 12px", fontVariantNumeric: "tabular-nums" },
      ".cm-activeLineGutter": { backgroundColor: v("surface-2"), color: v("text-2") },
      ".cm-foldGutter .cm-gutterElement": { padding: "0 4px", cursor: "pointer", color: v("text-3") },
      ".cm-foldGutter .cm-gutterElement:hover": { color: v("text") },
      ".cm-foldPlaceholder": { backgroundColor: v("surface-3"), border: `1px solid ${v("border-strong")}`, color: v("text-2"), borderRadius: "4px", padding: "0 6px" },

      ".cm-panels": { backgroundColor: v("surface-2"), color: v("text") },
      ".cm-panels.cm-panels-top": { borderBottom: `1px solid ${v("border")}` },
      ".cm-panels.cm-panels-bottom": { borderTop: `1px solid ${v("border")}` },
      ".cm-panel.cm-search": { padding: "6px 28px 6px 8px", fontFamily: `var(--font, system-ui, sans-serif)`, fontSize: "12px" },
      ".cm-panel.cm-search label": { color: v("text-2") },
      ".cm-panel.cm-search input[type=checkbox]": { accentColor: v("accent") },
      ".cm-panel.cm-search [name=close]": { color: v("text-2"), fontSize: "18px", top: "4px", right: "6px" },
      ".cm-textfield": {
        backgroundColor: v("surface"), color: v("text"), border: `1px solid ${v("border-strong")}`,
        borderRadius: "var(--radius-sm, 6px)", padding: "3px 6px", fontSize: "12px",
      },
      ".cm-textfield:focus": { outline: "none", borderColor: v("accent") },
      ".cm-button": {
        backgroundImage: "none", backgroundColor: v("surface-3"), color: v("text"),
        border: `1px solid ${v("border-strong")}`, borderRadius: "var(--radius-sm, 6px)", padding: "3px 10px", fontSize: "12px",
      },
      ".cm-button:hover": { borderColor: v("accent") },
      ".cm-button:active": { backgroundImage: "none", backgroundColor: v("surface-2") },

      ".cm-tooltip": {
        backgroundColor: v("surface-2"), color: v("text"), border: `1px solid ${v("border-strong")}`,
        borderRadius: "var(--radius-sm, 6px)", boxShadow: `var(--shadow, 0 12px 32px rgba(0, 0, 0, ${dark ? 0.45 : 0.12}))`,
      },
      ".cm-tooltip .cm-tooltip-arrow:before": { borderTopColor: v("border-strong"), borderBottomColor: v("border-strong") },
      ".cm-tooltip .cm-tooltip-arrow:after": { borderTopColor: v("surface-2"), borderBottomColor: v("surface-2") },
      // Rounded like the tooltip around it (which cannot clip: the description sits beside it).
      ".cm-tooltip.cm-tooltip-autocomplete > ul": { fontFamily: `var(--mono, ${MONO})`, maxHeight: "16em", borderRadius: "var(--radius-sm, 6px)" },
      ".cm-tooltip.cm-tooltip-autocomplete > ul > li": { padding: "2px 8px 2px 4px", lineHeight: "1.5" },
      ".cm-tooltip.cm-tooltip-autocomplete > ul > li[aria-selected]": { backgroundColor: mix(v("accent-2"), dark ? 35 : 18), color: v("text") },
      ".cm-completionIcon": { color: v("text-3"), opacity: "1" },
      ".cm-completionLabel": { color: v("text") },
      ".cm-completionMatchedText": { color: v("accent"), textDecoration: "none", fontWeight: "600" },
      ".cm-completionDetail": { color: v("text-3"), fontStyle: "normal", marginLeft: "1.2em" },
      // Narrow enough to fit beside the list, where it hides none of the other options.
      ".cm-tooltip.cm-completionInfo": { padding: "6px 10px", maxWidth: "280px", whiteSpace: "pre-wrap", fontSize: "12px", lineHeight: "1.5" },

      ".cm-studio-hover": { padding: "6px 10px", maxWidth: "420px", whiteSpace: "pre-wrap", fontSize: "12px", lineHeight: "1.5" },
      ".cm-tooltip-lint": { padding: "0", maxWidth: "min(520px, 90vw)" },
      ".cm-diagnostic": { padding: "6px 10px", borderLeftWidth: "3px", whiteSpace: "pre-wrap", fontSize: "12px", lineHeight: "1.5" },
      ".cm-diagnostic-error": { borderLeftColor: v("bad") },
      ".cm-diagnostic-warning": { borderLeftColor: v("warn") },
      ".cm-diagnostic-info, .cm-diagnostic-hint": { borderLeftColor: v("accent-2") },
      ".cm-studio-hint": { color: v("text-2"), marginTop: "2px" },
      ".cm-diagnosticAction": { backgroundColor: v("surface-3"), color: v("accent"), border: `1px solid ${v("border-strong")}`, borderRadius: "4px", padding: "1px 8px", marginTop: "6px" },
      ".cm-lintRange-error": underline("bad"),
      ".cm-lintRange-warning": underline("warn"),
      ".cm-lintRange-info, .cm-lintRange-hint": underline("accent-2"),
      ".cm-lintRange-active": { backgroundColor: mix(v("warn"), 14) },
      ".cm-lintPoint-error:after": { borderBottomColor: v("bad") },
      ".cm-lintPoint-warning:after": { borderBottomColor: v("warn") },
      ".cm-lint-marker-error": marker("bad"),
      ".cm-lint-marker-warning": marker("warn"),
      ".cm-lint-marker-info, .cm-lint-marker-hint": marker("accent-2"),

      // Jinja inside YAML scalars: the dashboard's template-variable tint (.tvar).
      ".cm-studio-template": { backgroundColor: mix(v("accent-2"), dark ? 16 : 12), borderRadius: "3px" },
    },
    { dark },
  );
}

function highlighting(dark) {
  const v = vars(dark ? PALETTES.dark : PALETTES.light);
  // The dashboard's green, amber and red stay the same in its light theme, where they are too
  // pale for text on white: text in those roles is darkened towards --text there.
  const ink = (role) => (dark ? v(role) : mix(v(role), 55, v("text")));
  // The same roles as the dashboard's code colours (.tk-key, .tk-str, .tk-lit, .tk-com).
  return HighlightStyle.define(
    [
      { tag: t.definition(t.propertyName), color: v("accent-2") },
      { tag: t.string, color: ink("ok") },
      { tag: t.special(t.string), color: v("accent"), fontWeight: "600" },
      { tag: t.content, color: v("text") },
      { tag: [t.labelName, t.typeName], color: dark ? "#f472b6" : "#be185d" },
      { tag: [t.keyword, t.meta], color: v("accent") },
      { tag: t.attributeValue, color: v("text-2") },
      { tag: t.lineComment, color: v("text-3"), fontStyle: "italic" },
      { tag: [t.separator, t.punctuation], color: v("text-3") },
      { tag: [t.squareBracket, t.brace], color: v("text-2") },
      { tag: t.invalid, color: ink("bad") },
    ],
    { themeType: dark ? "dark" : "light" },
  );
}

/** The theme and syntax colours for `dark` (true) or light (false). */
export function studioTheme(dark) {
  const isDark = Boolean(dark);
  return [editorTheme(isDark), syntaxHighlighting(highlighting(isDark))];
}
