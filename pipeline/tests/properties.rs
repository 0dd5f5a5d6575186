//! Whatever the text, `validate` returns (never panics) and every diagnostic points inside it.

use pipeline::{validate, Catalog, Diagnostic};
use proptest::prelude::*;

const VALID: &str = r#"name: research-brief
description: Outline, draft and critique a brief
defaults: { provider: simulated, model: sim-small, max_tokens: 512, temperature: 0.2 }
inputs:
  topic: { default: "event sourcing" }
  audience: engineers
env:
  STYLE: terse
max_parallel: 2
steps:
  - name: outline
    prompt: "Write a five-point outline about {{ topic }} for {{ inputs.audience }}."
  - name: draft
    system: >
      You write {{ env.STYLE }}
      technical briefs.
    prompt: |
      Expand this outline:
      {{ steps.outline.output }}
    token_budget: 1200
    retry: { attempts: 3, backoff_ms: 500 }
  - name: critique
    prompt: "Critique this draft:\n{{ steps.draft.output }}"
    depends_on: [outline]
"#;

fn catalog() -> Catalog {
    Catalog {
        providers: vec!["simulated".into(), "anthropic".into()],
    }
}

fn check_positions(text: &[u8], diagnostics: &[Diagnostic]) -> Result<(), TestCaseError> {
    let lines = u32::try_from(text.split(|&b| b == b'\n').count()).unwrap_or(u32::MAX);
    prop_assert!(
        !diagnostics.is_empty(),
        "an error must come with a diagnostic"
    );
    for d in diagnostics {
        prop_assert!(d.line >= 1 && d.column >= 1, "{d}");
        prop_assert!(
            d.line <= lines + 1,
            "{d} is past the {lines} lines of the text"
        );
        prop_assert!(!d.message.is_empty());
    }
    Ok(())
}

/// Characters that YAML and templates give meaning to, so mutations hit interesting states.
fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            ':', '-', ' ', '\n', '\t', '{', '}', '[', ']', '%', '#', '"', '\'', '|', '>', '&', '*',
            '!', ',', '?', '.', '_', 'é', '😀', '\r', '\0'
        ]),
        any::<char>(),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), interesting_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), interesting_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        match *edit {
            Edit::Insert(i, c) => {
                let at = i % (chars.len() + 1);
                chars.insert(at, c);
            }
            Edit::Delete(i) if !chars.is_empty() => {
                let at = i % chars.len();
                chars.remove(at);
            }
            Edit::Replace(i, c) if !chars.is_empty() => {
                let at = i % chars.len();
                chars[at] = c;
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

#[test]
fn the_base_pipeline_is_valid() {
    if let Err(d) = validate(VALID.as_bytes(), &catalog()) {
        panic!("{d:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(diagnostics) = validate(&bytes, &catalog()) {
            check_positions(&bytes, &diagnostics)?;
        }
    }

    #[test]
    fn mutated_pipelines_never_panic(edits in prop::collection::vec(edit(), 1..8)) {
        let text = apply(VALID, &edits);
        if let Err(diagnostics) = validate(text.as_bytes(), &catalog()) {
            check_positions(text.as_bytes(), &diagnostics)?;
        }
    }
}

/// Pieces templates are made of, valid and not: delimiters, statements, filters, names the
/// context holds and not, and text.
fn template_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "{{",
            "}}",
            "{%",
            "%}",
            "{#",
            "#}",
            " for x in items ",
            " endfor ",
            " if ",
            " else ",
            " endif ",
            " set y = ",
            "|",
            "upper",
            "join(',')",
            "length",
            "default('-')",
            "truncate(3)",
            "topic",
            "inputs.topic",
            "steps.a.output",
            "items",
            "x",
            "loop.index",
            "range(3)",
            "(",
            ")",
            "[",
            "]",
            ".",
            "~",
            "+",
            "*",
            "\"",
            "'",
            "\n",
            " ",
            "9999999999",
            "-1",
        ])
        .prop_map(str::to_owned),
        "[a-z{}%#|() .'\"\\n]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Whatever the template, rendering answers (a text or a message) and never panics.
    #[test]
    fn random_templates_render_or_say_why(pieces in prop::collection::vec(template_piece(), 0..24)) {
        let source: String = pieces.concat();
        let context = serde_json::json!({
            "topic": "CRDTs",
            "inputs": {"topic": "CRDTs"},
            "items": ["a", "b", "c"],
            "steps": {"a": {"output": "text"}},
        });
        if let Err(message) = pipeline::template::render(&source, &context) {
            prop_assert!(!message.is_empty());
        }
        let _ = pipeline::template::references(&source);
    }
}
