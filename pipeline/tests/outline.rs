//! The outline `check` gives next to the verdict: what an editor draws (steps, dependencies, a
//! cycle, inputs) from as much of the text as could be read, even while it has problems.

use pipeline::{check, Catalog, OutlineStep, MAX_BYTES};

fn catalog() -> Catalog {
    Catalog {
        providers: vec!["simulated".into(), "openai".into()],
    }
}

fn step<'a>(outline: &'a pipeline::Outline, name: &str) -> &'a OutlineStep {
    outline
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step `{name}` in {outline:?}"))
}

#[test]
fn a_valid_pipeline_outlines_as_it_validates() {
    let text = "name: brief
inputs:
  topic:
    description: What to write about
  tone: calm
env:
  REGION: eu
defaults:
  model: sim-large
steps:
  - name: outline
    prompt: Outline {{ topic }}
  - name: draft
    provider: openai
    model: gpt-4o
    prompt: Expand {{ steps.outline.output }}
  - name: review
    depends_on: [draft]
    prompt: Review
";
    let checked = check(text.as_bytes(), &catalog());
    let pipeline = checked.result.expect("valid");
    let outline = checked.outline;
    assert_eq!(outline.name.as_deref(), Some("brief"));
    assert_eq!(outline.steps.len(), 3);
    let draft = step(&outline, "draft");
    assert_eq!(draft.line, 13);
    assert_eq!(draft.depends_on, ["outline"]);
    assert_eq!(
        (draft.provider.as_str(), draft.model.as_str()),
        ("openai", "gpt-4o")
    );
    let first = step(&outline, "outline");
    assert_eq!(
        (first.provider.as_str(), first.model.as_str()),
        ("simulated", "sim-large")
    );
    assert_eq!(step(&outline, "review").depends_on, ["draft"]);
    assert!(outline.cycle.is_empty());
    assert_eq!(outline.inputs, pipeline.inputs);
    assert_eq!(outline.env, ["REGION"]);
    // The validator's own dependencies are the outline's.
    for s in &pipeline.steps {
        assert_eq!(step(&outline, &s.name).depends_on, s.depends_on);
    }
}

#[test]
fn problems_leave_the_rest_of_the_graph_in_place() {
    let text = "name: brief
steps:
  - name: first
    promt: Use {{ steps.second.output }}
  - name: second
    prompt: Hello
    provider: nowhere
";
    let checked = check(text.as_bytes(), &catalog());
    let problems = checked.result.expect_err("invalid");
    assert!(
        problems
            .iter()
            .any(|p| (p.line, p.column) == (4, 5) && p.suggestion.as_deref() == Some("prompt")),
        "{problems:?}"
    );
    let outline = checked.outline;
    assert_eq!(outline.steps.len(), 2);
    assert_eq!(step(&outline, "second").provider, "nowhere");
    assert!(step(&outline, "first").depends_on.is_empty());

    let later = "name: brief
steps:
  - name: first
    prompt: Use {{ steps.second.output }}
  - name: second
    prompt: Hello
";
    let checked = check(later.as_bytes(), &catalog());
    let problems = checked.result.expect_err("a later step is refused");
    assert_eq!(
        (problems[0].line, problems[0].column),
        (4, 20),
        "{problems:?}"
    );
    assert_eq!(step(&checked.outline, "first").depends_on, ["second"]);
}

#[test]
fn a_cycle_is_named_in_order() {
    let text = "name: loop
steps:
  - name: a
    depends_on: c
    prompt: A
  - name: b
    depends_on: a
    prompt: B
  - name: c
    prompt: C {{ steps.b.output }}
";
    let checked = check(text.as_bytes(), &catalog());
    let problems = checked.result.expect_err("cyclic");
    assert!(problems
        .iter()
        .any(|p| p.message.contains("dependency cycle")));
    let cycle = &checked.outline.cycle;
    assert_eq!(cycle.len(), 3, "{cycle:?}");
    // Each depends on the next, the last on the first.
    for (i, name) in cycle.iter().enumerate() {
        let next = &cycle[(i + 1) % cycle.len()];
        assert!(
            step(&checked.outline, name).depends_on.contains(next),
            "{name} → {next} in {cycle:?}"
        );
    }
}

#[test]
fn text_that_stops_parsing_still_outlines_what_comes_before() {
    let text = "name: half
steps:
  - name: one
    prompt: Hi
  - name: two
    prompt: \"Use {{ steps.one.output }}
";
    let checked = check(text.as_bytes(), &catalog());
    let problems = checked.result.expect_err("unclosed quote");
    assert_eq!(problems.len(), 1, "only the parse error: {problems:?}");
    assert!(
        problems[0].message.starts_with("invalid YAML"),
        "{problems:?}"
    );
    let names: Vec<&str> = checked
        .outline
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["one", "two"]);
    assert_eq!(checked.outline.name.as_deref(), Some("half"));
}

#[test]
fn too_large_a_text_is_one_problem_and_no_outline() {
    let text = format!("name: big\n# {}\n", "x".repeat(MAX_BYTES));
    let checked = check(text.as_bytes(), &catalog());
    let problems = checked.result.expect_err("too large");
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.contains("at most"), "{problems:?}");
    assert_eq!(checked.outline, pipeline::Outline::default());
}

/// Every example pipeline is valid, and its outline is its graph: the same steps, each with the
/// dependencies the validator found.
#[test]
fn the_examples_outline_as_they_validate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the examples folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read(&path).expect("read");
        let checked = check(&text, &Catalog::default());
        let pipeline = checked
            .result
            .unwrap_or_else(|d| panic!("{}: {d:?}", path.display()));
        assert_eq!(checked.outline.steps.len(), pipeline.steps.len());
        for s in &pipeline.steps {
            let outlined = step(&checked.outline, &s.name);
            assert_eq!(outlined.depends_on, s.depends_on, "{}", path.display());
            assert_eq!(
                (&outlined.provider, &outlined.model),
                (&s.provider, &s.model)
            );
        }
        seen += 1;
    }
    assert!(seen > 0, "no examples in {}", dir.display());
}
