//! Prompt templates (Jinja syntax). The context of a step's templates is
//! `{ <input>: …, inputs: {…}, env: {…}, steps: { <step>: { output: … } } }`.
//!
//! Prompts are plain text, so there is no HTML escaping; undefined variables are errors at
//! render time (a prompt silently missing its input is worse than a failed step).

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value;

/// Names the template engine defines itself (`range(3)`, `dict(a=1)`, …): referencing them is not
/// a reference to an input.
pub const BUILTIN_GLOBALS: &[&str] = &["range", "dict", "debug", "namespace"];

/// The filters a template may use (`{{ x | name }}`), with what each does, for an editor's
/// completion. Every one is checked against the engine (a test renders each).
pub const FILTERS: &[(&str, &str)] = &[
    ("abs", "absolute value of a number"),
    ("attr", "an attribute of a value: `x | attr(\"name\")`"),
    ("batch", "a list cut into lists of n items: `batch(3)`"),
    ("bool", "the value as true or false"),
    (
        "capitalize",
        "first character upper case, the rest lower case",
    ),
    ("chain", "several lists (or mappings) read as one"),
    (
        "count",
        "the number of items or characters (same as `length`)",
    ),
    ("d", "short for `default`"),
    (
        "default",
        "this value when the variable is undefined: `default(\"n/a\")`",
    ),
    ("dictsort", "a mapping's entries as pairs, sorted by key"),
    ("e", "short for `escape`"),
    ("escape", "HTML-escaped text"),
    ("first", "the first item, or first character"),
    ("float", "the value as a number with a fraction"),
    (
        "format",
        "printf-style formatting: `\"%s: %d\" | format(a, b)`",
    ),
    (
        "groupby",
        "items grouped by an attribute: `groupby(\"kind\")`",
    ),
    (
        "indent",
        "every line after the first indented by n spaces: `indent(2)`",
    ),
    ("int", "the value as a whole number"),
    ("items", "a mapping's entries as key, value pairs"),
    ("join", "the items joined into one text: `join(\", \")`"),
    ("last", "the last item, or last character"),
    ("length", "the number of items or characters"),
    ("lines", "the text split into its lines"),
    ("list", "the value as a list"),
    ("lower", "lower case"),
    (
        "map",
        "a filter or attribute applied to each item: `map(\"upper\")`",
    ),
    ("max", "the largest item"),
    ("min", "the smallest item"),
    ("pprint", "the value pretty-printed"),
    ("reject", "items for which a test fails: `reject(\"none\")`"),
    ("rejectattr", "items whose attribute fails a test"),
    (
        "replace",
        "each occurrence replaced: `replace(\"a\", \"b\")`",
    ),
    ("reverse", "items or characters in reverse order"),
    ("round", "rounded to n decimal places: `round(2)`"),
    ("safe", "marked safe (no escaping)"),
    ("select", "items for which a test passes: `select(\"odd\")`"),
    ("selectattr", "items whose attribute passes a test"),
    ("slice", "a list cut into n lists of about equal size"),
    ("sort", "items in order: `sort(reverse=true)`"),
    (
        "split",
        "the text split on a separator (whitespace by default)",
    ),
    ("string", "the value as text"),
    ("sum", "the sum of the items"),
    ("title", "Each Word Capitalised"),
    ("trim", "whitespace removed at both ends"),
    ("unique", "items with duplicates removed"),
    ("upper", "upper case"),
    ("zip", "several lists read in step, as tuples"),
];

/// Render work allowed per template, in engine instructions. A prompt needs a few hundred; this
/// stops `{% for i in range(10000) %}{% for j in range(10000) %}` from pinning a server core.
const FUEL: u64 = 5_000_000;

/// A rendered template and the variables it used, for the prompt inspector.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    /// Each variable path the template references (`topic`, `steps.outline.output`) with the
    /// value substituted for it.
    pub variables: serde_json::Map<String, Value>,
}

/// A template that does not parse, located inside the template source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong, without location (e.g. "unexpected end of input, expected end of variable block").
    pub message: String,
    /// Byte offset in the template source where the problem is (clamped to the source).
    pub offset: usize,
    /// 1-based line within the template.
    pub line: u32,
    /// 1-based column (in characters) within the template.
    pub column: u32,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TemplateError {}

/// Limits on one template's shape, checked before MiniJinja sees it. MiniJinja recurses over
/// expressions and nested blocks, and some chains (`a.a.a…`, `- - - b`, `b + b + …`) have no limit
/// of their own: a few thousand links overflow a 1 MiB stack (the browser's WebAssembly default).
/// Real prompts stay far below these.
const MAX_TAG_TOKENS: usize = 500;
const MAX_BRACKET_DEPTH: usize = 32;
const MAX_BLOCK_DEPTH: usize = 32;

/// Rejects templates whose tags are long or deep enough to risk the engine's stack (see
/// [`MAX_TAG_TOKENS`]). A rough lexer: it only needs to count, not to understand.
fn check_shape(source: &str) -> Result<(), TemplateError> {
    let bytes = source.as_bytes();
    let mut i = 0;
    let mut blocks = 0usize;
    while let Some(found) = source[i..].find('{') {
        let start = i + found;
        let close = match bytes.get(start + 1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => {
                i = source[start + 2..]
                    .find("#}")
                    .map_or(source.len(), |end| start + 2 + end + 2);
                continue;
            }
            _ => {
                i = start + 1;
                continue;
            }
        };
        let body_start = start + 2;
        let mut tokens = 0usize;
        let mut depth = 0usize;
        let mut j = body_start;
        let mut quote: Option<u8> = None;
        let mut in_word = false;
        let mut end = source.len();
        while j < bytes.len() {
            let b = bytes[j];
            if let Some(q) = quote {
                if b == b'\\' {
                    j += 1;
                } else if b == q {
                    quote = None;
                }
                j += 1;
                continue;
            }
            if bytes[j..].starts_with(close.as_bytes()) {
                end = j;
                break;
            }
            let word = b.is_ascii_alphanumeric() || b == b'_';
            match b {
                b'"' | b'\'' => {
                    quote = Some(b);
                    tokens += 1;
                }
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    tokens += 1;
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ if word => {
                    if !in_word {
                        tokens += 1;
                    }
                }
                _ if b.is_ascii_whitespace() => {}
                _ => tokens += 1,
            }
            in_word = word;
            let problem = if depth > MAX_BRACKET_DEPTH {
                Some(format!(
                    "brackets nested more than {MAX_BRACKET_DEPTH} deep"
                ))
            } else if tokens > MAX_TAG_TOKENS {
                Some(format!(
                    "a tag longer than {MAX_TAG_TOKENS} words and symbols"
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(error_at(
                    source,
                    start,
                    format!("template too complex: {problem}; split it up"),
                ));
            }
            j += 1;
        }
        let end = end.min(source.len());
        if close == "%}" {
            let body = source
                .get(body_start..end)
                .unwrap_or_default()
                .trim_matches(|c: char| c.is_whitespace() || c == '-' || c == '+');
            let keyword = body.split_whitespace().next().unwrap_or_default();
            match keyword {
                "raw" => {
                    // Raw text up to `endraw` is not template syntax.
                    i = source[end..]
                        .find("endraw")
                        .map_or(source.len(), |at| end + at);
                    continue;
                }
                "if" | "for" | "macro" | "call" | "filter" | "with" | "block" | "autoescape" => {
                    blocks += 1;
                }
                "set" if !body.contains('=') => blocks += 1,
                _ if keyword.starts_with("end") => blocks = blocks.saturating_sub(1),
                _ => {}
            }
            if blocks > MAX_BLOCK_DEPTH {
                return Err(error_at(
                    source,
                    start,
                    format!(
                        "template too complex: blocks nested more than {MAX_BLOCK_DEPTH} deep; split it up"
                    ),
                ));
            }
        }
        i = (end + close.len()).min(source.len());
    }
    Ok(())
}

/// A [`TemplateError`] at byte `offset` (a character boundary) of `source`.
fn error_at(source: &str, offset: usize, message: String) -> TemplateError {
    let before = &source[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    TemplateError {
        message,
        offset,
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Byte ranges on errors are only kept in debug mode.
    env.set_debug(true);
    env.set_fuel(Some(FUEL));
    env
}

/// Checks the syntax of `source` and returns the variable paths it reads from its context, sorted:
/// `topic`, `inputs.topic`, `env.API_BASE`, `steps.outline.output`. Attribute chains are followed as
/// far as they are static, so `steps[name].output` yields just `steps`. Loop variables and `set`
/// names are not references; the engine's own globals ([`BUILTIN_GLOBALS`]) are.
pub fn references(source: &str) -> Result<Vec<String>, TemplateError> {
    check_shape(source)?;
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| template_error(source, &e))?;
    check_filters_and_tests(&env, source)?;
    let mut refs: Vec<String> = variables_read(&env, source, &template)
        .into_iter()
        .collect();
    refs.sort_unstable();
    Ok(refs)
}

/// The variable paths `template` (parsed from `source`) reads. MiniJinja 3.1's analysis skips the
/// operand of a slice (`{{ steps.draft.output[:400] }}` reads nothing, by its account), which
/// would hide a dependency; so slices are analysed as index expressions over the same names.
fn variables_read(
    env: &Environment<'_>,
    source: &str,
    template: &minijinja::Template<'_, '_>,
) -> std::collections::HashSet<String> {
    let rewritten = slices_as_indexes(source);
    if rewritten != source {
        if let Ok(analysed) = env.template_from_str(&rewritten) {
            return analysed.undeclared_variables(true);
        }
    }
    template.undeclared_variables(true)
}

/// `x[a:b]` → `x[(a) ~ (b)]` (an empty bound becomes `none`) inside tags, outside strings: the
/// same names read, in a form the analysis follows. Only for analysis, never rendered.
fn slices_as_indexes(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut copied = 0;
    let positions = code_positions(source);
    for (k, &i) in positions.iter().enumerate() {
        if i < copied || source.as_bytes()[i] != b'[' {
            continue;
        }
        if let Some((end, parts)) = slice_at(source, i, &positions[k + 1..]) {
            out.push_str(&source[copied..=i]);
            let bounds: Vec<String> = parts
                .iter()
                .map(|p| match p.trim() {
                    "" => "none".to_owned(),
                    p => format!("({p})"),
                })
                .collect();
            out.push_str(&bounds.join(" ~ "));
            copied = end;
        }
    }
    out.push_str(&source[copied..]);
    out
}

/// Byte positions of template code: inside `{{ }}` and `{% %}`, outside string literals and the
/// delimiters themselves.
fn code_positions(source: &str) -> Vec<usize> {
    let bytes = source.as_bytes();
    let mut positions = Vec::new();
    let mut i = 0;
    let mut in_tag = false;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if !in_tag {
            if b == b'{' && matches!(bytes.get(i + 1), Some(b'{' | b'%')) {
                in_tag = true;
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        if let Some(q) = quote {
            if b == b'\\' {
                i += 1;
            } else if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match b {
            b'\'' | b'"' => quote = Some(b),
            b'}' | b'%' if bytes.get(i + 1) == Some(&b'}') => {
                in_tag = false;
                i += 2;
                continue;
            }
            _ => positions.push(i),
        }
        i += 1;
    }
    positions
}

/// For the `[` at `open`: when its contents hold a top-level `:` (a slice), the index of the
/// closing `]` and the contents split at top-level colons. `code` are the code positions after
/// `open` (string literals already left out).
fn slice_at<'s>(source: &'s str, open: usize, code: &[usize]) -> Option<(usize, Vec<&'s str>)> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut cuts = vec![open + 1];
    for &i in code {
        match bytes[i] {
            b'[' | b'(' | b'{' => depth += 1,
            b']' if depth == 0 => {
                if cuts.len() == 1 {
                    return None;
                }
                cuts.push(i + 1);
                let parts = cuts.windows(2).map(|w| &source[w[0]..w[1] - 1]).collect();
                return Some((i, parts));
            }
            b']' | b')' | b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 0 => cuts.push(i + 1),
            _ => {}
        }
    }
    None
}

/// MiniJinja looks filters and tests up only when it renders, so `{{ x | truncat }}` parses and
/// would fail the run at its step. Every `| name` and `is name` is looked up here instead, by
/// rendering a one-line probe (the engine's own list is not public, and a copy would go stale).
fn check_filters_and_tests(env: &Environment<'_>, source: &str) -> Result<(), TemplateError> {
    let mut known: Vec<(&str, bool, bool)> = Vec::new();
    for (offset, name, is_test) in filter_and_test_names(source) {
        let ok = match known.iter().find(|(n, t, _)| *n == name && *t == is_test) {
            Some((_, _, ok)) => *ok,
            None => {
                let probe = if is_test {
                    format!("{{{{ 1 is {name} }}}}")
                } else {
                    format!("{{{{ 1 | {name} }}}}")
                };
                let ok = match env.render_str(&probe, ()) {
                    Ok(_) => true,
                    Err(e) => !matches!(
                        e.kind(),
                        minijinja::ErrorKind::UnknownFilter | minijinja::ErrorKind::UnknownTest
                    ),
                };
                known.push((name, is_test, ok));
                ok
            }
        };
        if !ok {
            let what = if is_test { "test" } else { "filter" };
            return Err(error_at(
                source,
                offset,
                format!(
                    "unknown {what} `{name}`; see the template reference for the {what}s available"
                ),
            ));
        }
    }
    Ok(())
}

/// `(offset, name, is_test)` of each `| filter` and `is [not] test` inside `{{ }}` and `{% %}`,
/// outside string literals.
fn filter_and_test_names(source: &str) -> Vec<(usize, &str, bool)> {
    let bytes = source.as_bytes();
    let mut found = Vec::new();
    for i in code_positions(source) {
        match bytes[i] {
            b'|' => {
                let (start, name) = identifier_after(source, i + 1);
                if !name.is_empty() {
                    found.push((start, name, false));
                }
            }
            b'i' if source[i..].starts_with("is")
                && (i == 0 || !is_ident(bytes[i - 1]))
                && !bytes.get(i + 2).copied().is_some_and(is_ident) =>
            {
                let (mut start, mut name) = identifier_after(source, i + 2);
                if name == "not" {
                    (start, name) = identifier_after(source, start + 3);
                }
                if !name.is_empty() {
                    found.push((start, name, true));
                }
            }
            _ => {}
        }
    }
    found
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The identifier after optional spaces at `from`, and where it starts.
fn identifier_after(source: &str, from: usize) -> (usize, &str) {
    let bytes = source.as_bytes();
    let mut start = from.min(bytes.len());
    while start < bytes.len() && bytes[start].is_ascii_whitespace() {
        start += 1;
    }
    let mut end = start;
    while end < bytes.len() && is_ident(bytes[end]) {
        end += 1;
    }
    (start, &source[start..end])
}

fn template_error(source: &str, e: &minijinja::Error) -> TemplateError {
    let offset = match (e.range(), e.line()) {
        (Some(range), _) => range.start.min(source.len()),
        // No span: fall back to the start of the reported line.
        (None, Some(line)) => source
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum(),
        (None, None) => 0,
    };
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let message = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_owned);
    error_at(source, offset, message)
}

/// Renders `source` with `context`. The error message says what failed and where in the template.
pub fn render(source: &str, context: &Value) -> Result<Rendered, String> {
    check_shape(source).map_err(|e| format!("template syntax error at {e}"))?;
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| format!("template syntax error at {}", template_error(source, &e)))?;
    let text = template
        .render(minijinja::Value::from(minijinja::value::Serde(context)))
        .map_err(|e| render_error(source, &e))?;
    let mut variables = serde_json::Map::new();
    for path in variables_read(&env, source, &template) {
        // A path the context does not hold all of (probed with `is defined`) falls back to its
        // longest prefix that it does hold: the value the template started from.
        let mut path = path.as_str();
        loop {
            if let Some(value) = lookup(context, path) {
                variables.insert(path.to_owned(), value.clone());
                break;
            }
            match path.rsplit_once('.') {
                Some((prefix, _)) => path = prefix,
                None => break,
            }
        }
    }
    Ok(Rendered { text, variables })
}

fn render_error(source: &str, e: &minijinja::Error) -> String {
    let located = template_error(source, e);
    let what = match e.kind() {
        minijinja::ErrorKind::UndefinedError => {
            // The span covers the failing expression, which names the missing variable.
            // The span covers the failing lookup (`.missing.output`); widen it back to the start
            // of the dotted path so the message names the whole variable.
            let expression = e
                .range()
                .map(|r| {
                    let start = source
                        .get(..r.start)
                        .and_then(|before| {
                            before
                                .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
                                .map(|i| i + 1)
                        })
                        .unwrap_or(0);
                    start..r.end
                })
                .and_then(|r| source.get(r))
                .map(|s| format!(" `{}`", s.trim()))
                .unwrap_or_default();
            format!("undefined value{expression}")
        }
        minijinja::ErrorKind::OutOfFuel => {
            "the template does too much work (a loop that is too long?)".to_owned()
        }
        _ => located.message.clone(),
    };
    format!(
        "cannot render template at line {}, column {}: {what}",
        located.line, located.column
    )
}

/// The value at dotted `path` in `context`, if every segment exists.
fn lookup<'v>(context: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(context, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            // `{{ tags.0 }}` indexes a list.
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_follow_static_attributes() {
        let refs = references(
            "{{ topic }} {{ steps.outline.output }} {% for x in items %}{{ x }}{% endfor %} {{ env.K }}",
        )
        .expect("parses");
        assert_eq!(refs, ["env.K", "items", "steps.outline.output", "topic"]);
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = references("line one\nHello {{ name").expect_err("unclosed");
        assert_eq!(err.line, 2, "{err:?}");
        assert!(err.column >= 7, "{err:?}");
    }

    #[test]
    fn render_reports_variables_and_does_not_escape() {
        let rendered = render(
            "<b>{{ topic }}</b> {{ steps.a.output }}",
            &json!({"topic": "x & y", "steps": {"a": {"output": "done"}}}),
        )
        .expect("renders");
        assert_eq!(rendered.text, "<b>x & y</b> done");
        assert_eq!(rendered.variables["topic"], json!("x & y"));
        assert_eq!(rendered.variables["steps.a.output"], json!("done"));
        // `is defined` may probe a path that does not exist; the inspector shows what does.
        let rendered = render(
            "{% if a.output.extra is defined %}?{% endif %}{{ b.0 }}",
            &json!({"a": {"output": "x"}, "b": ["y"]}),
        )
        .expect("renders");
        assert_eq!(rendered.text, "y");
        assert_eq!(rendered.variables["a.output"], json!("x"));
        assert_eq!(rendered.variables["b"], json!(["y"]));
    }

    #[test]
    fn stack_hungry_templates_are_rejected_before_parsing() {
        for source in [
            format!("ok\n{{{{ {}b }}}}", "a.".repeat(50_000)),
            format!("{{{{ {}b }}}}", "-".repeat(50_000)),
            format!("{{{{ {}b{} }}}}", "(".repeat(1_000), ")".repeat(1_000)),
            "{% if x %}".repeat(10_000),
        ] {
            let err = references(&source).expect_err("too complex");
            assert!(err.message.contains("too complex"), "{err}");
        }
        let err = references(&format!("ok\n{{{{ {}b }}}}", "a.".repeat(50_000))).expect_err("long");
        assert_eq!((err.line, err.column), (2, 1));
        // Ordinary prompts, strings holding delimiters, and raw blocks pass.
        let raw = format!("{{% raw %}}{{{{ {} {{% endraw %}}", "(".repeat(100));
        references(&raw).expect("raw text is not syntax");
        references("{{ \"}}{{((\" ~ x }} {% for a in b %}{{ a.b.c | trim }}{% endfor %}")
            .expect("fine");
    }

    #[test]
    fn every_documented_filter_is_one_the_engine_has() {
        for (name, _) in FILTERS {
            let source = format!("{{{{ x | {name} }}}}");
            assert!(references(&source).is_ok(), "`{name}` is not a filter");
        }
        assert!(references("{{ x | not_a_filter }}").is_err());
    }

    #[test]
    fn unknown_filters_and_tests_are_found_before_a_run() {
        let error =
            references("Hi {{ name | upper }} {{ text | truncat(10) }}").expect_err("unknown");
        assert_eq!((error.line, error.column), (1, 33), "{error}");
        assert!(
            error.message.contains("unknown filter `truncat`"),
            "{error}"
        );
        let error = references("{% if x is not definedd %}y{% endif %}").expect_err("unknown");
        assert!(error.message.contains("unknown test `definedd`"), "{error}");
        // Inside strings a `|` is just text; known filters and tests pass.
        assert!(
            references("{{ 'a | b' ~ x | trim | lower }}{% if y is defined %}{% endif %}").is_ok()
        );
    }

    #[test]
    fn a_sliced_variable_is_still_a_reference() {
        assert_eq!(
            references("{{ steps.group.output[:400] }} {{ topic[n:] }} {{ 'a:b'[0] }}")
                .expect("valid"),
            ["n", "steps.group.output", "topic"]
        );
        let context = serde_json::json!({"steps": {"group": {"output": "abcdef"}}});
        let rendered = render("{{ steps.group.output[:3] }}", &context).expect("renders");
        assert_eq!(rendered.text, "abc");
        assert_eq!(rendered.variables["steps.group.output"], "abcdef");
    }

    #[test]
    fn undefined_is_an_error() {
        let err = render("{{ missing }}", &json!({})).expect_err("strict");
        assert!(err.contains("missing"), "{err}");
    }
}
