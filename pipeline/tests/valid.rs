//! Valid pipelines: defaults applied, dependencies made explicit, steps ordered, templates rendered.

use pipeline::template::{references, render};
use pipeline::{validate, Catalog, InputSpec, Pipeline, RetryPolicy};
use serde_json::json;

fn ok(text: &str) -> Pipeline {
    let catalog = Catalog {
        providers: vec!["simulated".into(), "anthropic".into()],
    };
    match validate(text.as_bytes(), &catalog) {
        Ok(p) => p,
        Err(diagnostics) => panic!(
            "expected a valid pipeline, got:\n{}",
            diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn names(p: &Pipeline) -> Vec<&str> {
    p.steps.iter().map(|s| s.name.as_str()).collect()
}

const DESIGN_EXAMPLE: &str = r#"
name: research-brief
description: Outline, draft and critique a brief
defaults: { provider: simulated, model: sim-small, max_tokens: 512, temperature: 0.2 }
inputs:
  topic: { default: "event sourcing" }
steps:
  - name: outline
    prompt: "Write a five-point outline about {{ topic }}."
  - name: draft
    provider: anthropic            # any configured provider
    model: claude-sonnet-4-5
    system: "You write concise technical briefs."
    prompt: "Expand this outline:\n{{ steps.outline.output }}"
    token_budget: 1200
    retry: { attempts: 3, backoff_ms: 500 }
  - name: critique
    prompt: "Critique this draft:\n{{ steps.draft.output }}"
"#;

#[test]
fn the_design_example_is_valid() {
    let p = ok(DESIGN_EXAMPLE);
    assert_eq!(p.name, "research-brief");
    assert_eq!(names(&p), ["outline", "draft", "critique"]);
    assert_eq!(p.defaults.temperature, 0.2);
    let draft = &p.steps[1];
    assert_eq!(draft.provider, "anthropic");
    assert_eq!(draft.model, "claude-sonnet-4-5");
    assert_eq!(draft.token_budget, Some(1200));
    assert_eq!(draft.depends_on, ["outline"]);
    assert_eq!(p.steps[2].depends_on, ["draft"]);
    assert_eq!(p.steps[2].provider, "simulated");
    assert_eq!(
        p.inputs,
        [(
            "topic".to_owned(),
            InputSpec {
                description: None,
                default: Some(json!("event sourcing"))
            }
        )]
    );
}

#[test]
fn built_in_defaults_apply_when_nothing_is_set() {
    let p = ok("name: tiny\nsteps:\n  - name: only\n    prompt: Say hi.\n");
    assert_eq!(p.max_parallel, 4);
    assert_eq!(p.defaults.provider, "simulated");
    assert_eq!(p.defaults.model, "sim-small");
    let step = &p.steps[0];
    assert_eq!(step.provider, "simulated");
    assert_eq!(step.model, "sim-small");
    assert_eq!(step.max_tokens, 512);
    assert_eq!(step.temperature, 0.7);
    assert_eq!(step.timeout_ms, 120_000);
    assert_eq!(step.token_budget, None);
    assert_eq!(
        step.retry,
        RetryPolicy {
            attempts: 3,
            backoff_ms: 500,
            max_backoff_ms: 30_000
        }
    );
    assert!(step.depends_on.is_empty());
    assert_eq!(step.system, None);
}

#[test]
fn defaults_and_step_values_layer_per_key() {
    let p = ok("
name: layered
max_parallel: 2
defaults:
  model: m1
  max_tokens: 100
  timeout_ms: 5000
  retry: { attempts: 5 }
steps:
  - name: a
    prompt: x
    max_tokens: 0x40
    retry: { backoff_ms: 10 }
  - name: b
    prompt: y
    temperature: 0
");
    assert_eq!(p.max_parallel, 2);
    let (a, b) = (&p.steps[0], &p.steps[1]);
    assert_eq!(
        (a.model.as_str(), a.max_tokens, a.timeout_ms),
        ("m1", 64, 5000)
    );
    assert_eq!(
        a.retry,
        RetryPolicy {
            attempts: 5,
            backoff_ms: 10,
            max_backoff_ms: 30_000
        }
    );
    assert_eq!(
        (b.max_tokens, b.temperature, b.retry.attempts),
        (100, 0.0, 5)
    );
}

#[test]
fn dependencies_are_explicit_plus_implied_and_steps_are_topological() {
    let p = ok(r#"
name: deps
inputs:
  topic: x
steps:
  - name: report
    prompt: "Summarise."
    depends_on: [zeta, alpha]
  - name: alpha
    prompt: "{{ topic }}"
  - name: zeta
    prompt: "{{ steps.alpha.output }}"
  - name: omega
    prompt: "{{ steps.zeta.output }} and {{ steps.alpha.output }}"
    depends_on: alpha
  - name: free
    prompt: "independent"
"#);
    // `report` waits for `zeta`, which waits for `alpha`; the others keep file order.
    assert_eq!(names(&p), ["alpha", "zeta", "report", "omega", "free"]);
    let step = |n: &str| {
        p.steps
            .iter()
            .find(|s| s.name == n)
            .expect("step exists")
            .depends_on
            .clone()
    };
    assert_eq!(step("report"), ["alpha", "zeta"]);
    assert_eq!(step("omega"), ["alpha", "zeta"]);
    assert_eq!(step("zeta"), ["alpha"]);
    assert!(step("free").is_empty());
}

#[test]
fn inputs_env_and_yaml_features() {
    let p = ok(r#"
name: features
inputs:
  topic: event sourcing
  audience:
    description: Who reads it
  count: { default: 3 }
  tags: [a, b]
  empty:
env:
  API_BASE: http://localhost:8080
  TOKEN:
steps:
  - name: one
    prompt: x
"#);
    let input = |n: &str| {
        p.inputs
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .expect("input exists")
    };
    assert_eq!(input("topic").default, Some(json!("event sourcing")));
    assert_eq!(input("audience").default, None);
    assert_eq!(
        input("audience").description.as_deref(),
        Some("Who reads it")
    );
    assert_eq!(input("count").default, Some(json!(3)));
    assert_eq!(input("tags").default, Some(json!(["a", "b"])));
    assert_eq!(input("empty").default, None);
    assert_eq!(
        p.env,
        [
            ("API_BASE".to_owned(), "http://localhost:8080".to_owned()),
            ("TOKEN".to_owned(), String::new())
        ]
    );
}

#[test]
fn anchors_and_block_scalars_work() {
    let p = ok("
name: anchors
defaults:
  retry: &retry { attempts: 2, backoff_ms: 100, max_backoff_ms: 200 }
steps:
  - name: one
    retry: *retry
    system: >
      You are
      terse.
    prompt: |
      Line one.
      Line two.
");
    let step = &p.steps[0];
    assert_eq!(step.retry.attempts, 2);
    assert_eq!(step.system.as_deref(), Some("You are terse.\n"));
    assert_eq!(step.prompt, "Line one.\nLine two.\n");
}

#[test]
fn an_empty_catalog_does_not_check_providers() {
    let text = "name: x\nsteps:\n  - name: a\n    provider: anything\n    prompt: y\n";
    assert!(validate(text.as_bytes(), &Catalog::default()).is_ok());
}

#[test]
fn render_substitutes_and_reports_variables() {
    let context = json!({
        "topic": "event sourcing",
        "inputs": { "topic": "event sourcing" },
        "env": { "STYLE": "terse" },
        "steps": { "outline": { "output": "1. Events\n2. Replay" } },
    });
    let rendered = render(
        "Be {{ env.STYLE }}. Expand on {{ topic }} ({{ inputs.topic | upper }}):\n{{ steps.outline.output }}\n\
         {% for line in steps.outline.output | lines %}- {{ line }}\n{% endfor %}",
        &context,
    )
    .expect("renders");
    assert_eq!(
        rendered.text,
        "Be terse. Expand on event sourcing (EVENT SOURCING):\n1. Events\n2. Replay\n- 1. Events\n- 2. Replay\n"
    );
    let keys: Vec<&str> = rendered.variables.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["env.STYLE", "inputs.topic", "steps.outline.output", "topic"]
    );
    assert_eq!(
        rendered.variables["steps.outline.output"],
        json!("1. Events\n2. Replay")
    );
}

#[test]
fn render_errors_say_what_and_where() {
    let err =
        render("ok\n{{ steps.missing.output }}", &json!({"steps": {}})).expect_err("undefined");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("steps.missing"), "{err}");
    let err = render("{{ unclosed", &json!({})).expect_err("syntax");
    assert!(err.contains("syntax error"), "{err}");
    let err = render(
        "{% for i in range(10000) %}{% for j in range(10000) %}.{% endfor %}{% endfor %}",
        &json!({}),
    )
    .expect_err("too much work");
    assert!(err.contains("too much work"), "{err}");
}

#[test]
fn references_list_what_templates_read() {
    assert_eq!(
        references("{% set n = 2 %}{{ n }} {{ topic }} {{ steps.a.output | trim }} {{ range(3) }}")
            .expect("parses"),
        ["range", "steps.a.output", "topic"]
    );
    let err = references("a\nb {% if %}").expect_err("syntax error");
    // `b {% if %}`: the block ends (column 9) where a condition was expected.
    assert_eq!((err.line, err.column), (2, 9), "{err}");
}

#[test]
fn the_readme_reference_examples_are_valid() {
    let readme = include_str!("../../README.md");
    let reference = readme
        .split("## Pipeline files")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a pipeline reference");
    let examples: Vec<&str> = reference
        .split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    assert_eq!(examples.len(), 2);
    let brief = ok(examples[0]);
    assert_eq!(names(&brief), ["outline", "draft", "critique"]);
    let review = ok(examples[1]);
    assert_eq!(names(&review), ["security", "style", "summary"]);
    assert_eq!(review.steps[2].depends_on, ["security", "style"]);
    assert_eq!(review.inputs[0].1.default, None);
    assert_eq!(
        render(
            "{{ steps.o.output | lines | length }}",
            &json!({"steps": {"o": {"output": "a\nb"}}})
        )
        .expect("renders")
        .text,
        "2"
    );
}
