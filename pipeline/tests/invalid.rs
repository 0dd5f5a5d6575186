//! Invalid pipelines: each must be rejected with a diagnostic at the right place that says what to
//! fix (and, where there is an obvious fix, suggests it).

use pipeline::{validate, Catalog, Diagnostic};

struct Case {
    name: &'static str,
    text: Vec<u8>,
    line: u32,
    column: u32,
    message: &'static str,
    suggestion: Option<&'static str>,
}

fn case(
    name: &'static str,
    text: impl Into<Vec<u8>>,
    (line, column): (u32, u32),
    message: &'static str,
    suggestion: Option<&'static str>,
) -> Case {
    Case {
        name,
        text: text.into(),
        line,
        column,
        message,
        suggestion,
    }
}

fn catalog() -> Catalog {
    Catalog {
        providers: vec![
            "simulated".into(),
            "openai".into(),
            "anthropic".into(),
            "gemini".into(),
        ],
    }
}

/// A billion-laughs document: each level is nine aliases of the previous one.
fn alias_bomb() -> String {
    let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in b'b'..=b'j' {
        let previous = char::from(level - 1);
        let aliases = vec![format!("*{previous}"); 9].join(", ");
        text.push_str(&format!("{0}: &{0} [{aliases}]\n", char::from(level)));
    }
    text
}

fn cases() -> Vec<Case> {
    let v = |steps: &str| format!("name: demo\nsteps:\n{steps}");
    vec![
        // --- YAML syntax -------------------------------------------------------------------
        case(
            "unclosed flow list",
            "name: demo\nsteps: [\n",
            (3, 1),
            "not closed",
            None,
        ),
        case(
            "tab indentation",
            "name: demo\nsteps:\n\t- name: a\n",
            (3, 2),
            "replace the tab with spaces",
            None,
        ),
        case(
            "colon in plain value",
            "name: demo\ndescription: Note: be brief\n",
            (2, 18),
            "must be quoted",
            None,
        ),
        case(
            "unclosed quote",
            "name: \"demo\nsteps: []\n",
            (1, 7),
            "quoted text is not closed",
            None,
        ),
        case(
            "misaligned indentation",
            "name: demo\nsteps:\n  - name: a\n    prompt: x\n   model: m\n",
            (5, 4),
            "indentation does not line up",
            None,
        ),
        case(
            "alias to unknown anchor",
            "name: *nope\n",
            (1, 7),
            "not defined above",
            None,
        ),
        case(
            "second document",
            "name: demo\n---\nname: other\n",
            (2, 1),
            "exactly one document",
            None,
        ),
        case(
            "duplicate key",
            "name: demo\nsteps:\n  - name: a\n    prompt: x\nname: again\n",
            (5, 1),
            "duplicate key `name` (first set on line 1)",
            None,
        ),
        case(
            "duplicate key inside a step",
            v("  - name: a\n    prompt: x\n    prompt: y\n"),
            (5, 5),
            "duplicate key `prompt`",
            None,
        ),
        // --- limits ------------------------------------------------------------------------
        case(
            "alias bomb",
            alias_bomb(),
            (6, 8),
            "more than 100000 values (an alias `*name` counts as a copy",
            None,
        ),
        case(
            "10 MB input",
            vec![b'a'; 10 * 1024 * 1024],
            (1, 1),
            "10485760 bytes",
            None,
        ),
        case(
            "10,000 nested flow lists",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            // The scanner's own limit (256 open brackets) fires before the builder sees 65 levels:
            // it reads ahead of the events it hands out.
            (1, 256),
            "nesting is too deep",
            None,
        ),
        case(
            "10,000 nested flow mappings",
            format!("{}1{}", "{a: ".repeat(10_000), "}".repeat(10_000)),
            (1, 1021),
            "nesting is too deep",
            None,
        ),
        case(
            "deeply nested block mappings",
            (0..100)
                .map(|depth| format!("{}k:\n", " ".repeat(depth)))
                .collect::<String>(),
            (65, 65),
            "nesting is too deep",
            None,
        ),
        case(
            "non-UTF-8 bytes",
            b"name: demo\nsteps:\n  - name: caf\xe9\n".to_vec(),
            (3, 14),
            "not valid UTF-8 (byte 0xE9",
            None,
        ),
        // --- document shape ----------------------------------------------------------------
        case("empty document", "", (1, 1), "the file is empty", None),
        case(
            "only comments",
            "# nothing yet\n",
            (1, 1),
            "the file is empty",
            None,
        ),
        case(
            "document is a list",
            "- name: a\n  prompt: x\n",
            (1, 1),
            "must be a mapping of keys",
            None,
        ),
        case(
            "document is a scalar",
            "hello",
            (1, 1),
            "found `hello`",
            None,
        ),
        case(
            "missing name",
            "steps:\n  - name: a\n    prompt: x\n",
            (1, 1),
            "has no `name:`",
            None,
        ),
        case("missing steps", "name: demo\n", (1, 1), "has no `steps:`", None),
        case(
            "empty steps",
            "name: demo\nsteps: []\n",
            (2, 8),
            "`steps` is empty",
            None,
        ),
        case(
            "steps is a mapping",
            "name: demo\nsteps:\n  a: {prompt: x}\n",
            (3, 3),
            "`steps` must be a list",
            None,
        ),
        case(
            "bad pipeline name",
            v("  - name: a\n    prompt: x\n").replacen("demo", "my demo!", 1),
            (1, 7),
            "may only use letters, digits, `-` and `_`",
            Some("my_demo_"),
        ),
        // --- numbers -----------------------------------------------------------------------
        case(
            "max_tokens not a number",
            v("  - name: a\n    prompt: x\n    max_tokens: abc\n"),
            (5, 17),
            "`max_tokens` must be a whole number ≥ 1, found `abc`",
            None,
        ),
        case(
            "max_tokens zero in defaults",
            "name: demo\ndefaults:\n  max_tokens: 0\nsteps:\n  - name: a\n    prompt: x\n",
            (3, 15),
            "`max_tokens` must be a whole number ≥ 1, found `0`",
            None,
        ),
        case(
            "max_tokens quoted",
            v("  - name: a\n    prompt: x\n    max_tokens: \"512\"\n"),
            (5, 17),
            "remove the quotes",
            None,
        ),
        case(
            "temperature not a number",
            v("  - name: a\n    prompt: x\n    temperature: hot\n"),
            (5, 18),
            "`temperature` must be a number from 0 to 2, found `hot`",
            None,
        ),
        case(
            "temperature out of range",
            "name: demo\ndefaults: { temperature: 2.5 }\nsteps:\n  - name: a\n    prompt: x\n",
            (2, 26),
            "from 0 to 2, found `2.5`",
            None,
        ),
        case(
            "timeout_ms negative",
            v("  - name: a\n    prompt: x\n    timeout_ms: -5\n"),
            (5, 17),
            "`timeout_ms` must be a whole number ≥ 1, found `-5`",
            None,
        ),
        case(
            "token_budget zero",
            v("  - name: a\n    prompt: x\n    token_budget: 0\n"),
            (5, 19),
            "`token_budget` must be a whole number ≥ 1",
            None,
        ),
        case(
            "token_budget a list",
            v("  - name: a\n    prompt: x\n    token_budget: [1]\n"),
            (5, 19),
            "found a list",
            None,
        ),
        case(
            "retry attempts out of range",
            v("  - name: a\n    prompt: x\n    retry: { attempts: 11 }\n"),
            (5, 24),
            "`attempts` must be a whole number from 1 to 10, found `11`",
            None,
        ),
        case(
            "retry backoff not a number",
            "name: demo\ndefaults:\n  retry:\n    backoff_ms: fast\nsteps:\n  - name: a\n    prompt: x\n",
            (4, 17),
            "`backoff_ms` must be a whole number ≥ 0, found `fast`",
            None,
        ),
        case(
            "max_backoff below backoff",
            v("  - name: a\n    prompt: x\n    retry: { backoff_ms: 900, max_backoff_ms: 100 }\n"),
            (5, 47),
            "must be at least `backoff_ms` (900)",
            None,
        ),
        case(
            "max_parallel too large",
            "name: demo\nmax_parallel: 65\nsteps:\n  - name: a\n    prompt: x\n",
            (2, 15),
            "`max_parallel` must be a whole number from 1 to 64, found `65`",
            None,
        ),
        case(
            "max_parallel a word",
            "name: demo\nmax_parallel: many\nsteps:\n  - name: a\n    prompt: x\n",
            (2, 15),
            "found `many`",
            None,
        ),
        // --- unknown keys ------------------------------------------------------------------
        case(
            "unknown top-level key",
            "name: demo\nsteps:\n  - name: a\n    prompt: x\ndescripton: hi\n",
            (5, 1),
            "unknown key `descripton` at the top level",
            Some("description"),
        ),
        case(
            "unknown key in defaults",
            "name: demo\ndefaults:\n  modle: m\nsteps:\n  - name: a\n    prompt: x\n",
            (3, 3),
            "unknown key `modle` in `defaults`",
            Some("model"),
        ),
        case(
            "unknown key in an input",
            "name: demo\ninputs:\n  topic: { defualt: x }\nsteps:\n  - name: a\n    prompt: x\n",
            (3, 12),
            "unknown key `defualt` in input `topic`",
            Some("default"),
        ),
        case(
            "unknown key in a step",
            v("  - name: a\n    promt: x\n    prompt: y\n"),
            (4, 5),
            "unknown key `promt` in step `a`",
            Some("prompt"),
        ),
        case(
            "unknown key in retry",
            v("  - name: a\n    prompt: x\n    retry:\n      atempts: 2\n"),
            (6, 7),
            "unknown key `atempts` in `retry`",
            Some("attempts"),
        ),
        // --- steps -------------------------------------------------------------------------
        case(
            "missing prompt",
            v("  - name: a\n    model: m\n"),
            (3, 5),
            "step `a` has no `prompt:`",
            None,
        ),
        case(
            "missing step name",
            v("  - prompt: x\n"),
            (3, 5),
            "step 1 has no `name:`",
            None,
        ),
        case(
            "duplicate step names",
            v("  - name: a\n    prompt: x\n  - name: b\n    prompt: y\n  - name: a\n    prompt: z\n"),
            (7, 11),
            "duplicate step name `a` (first used on line 3)",
            None,
        ),
        case(
            "step name with a dash",
            v("  - name: my-step\n    prompt: x\n"),
            (3, 11),
            "step name `my-step` must start with a letter",
            Some("my_step"),
        ),
        case(
            "unknown provider",
            v("  - name: a\n    prompt: x\n    provider: antropic\n"),
            (5, 15),
            "unknown provider `antropic`",
            Some("anthropic"),
        ),
        case(
            "unknown provider in defaults",
            "name: demo\ndefaults: { provider: openia }\nsteps:\n  - name: a\n    prompt: x\n",
            (2, 23),
            "unknown provider `openia`",
            Some("openai"),
        ),
        case(
            "depends_on unknown step",
            v("  - name: outline\n    prompt: x\n  - name: draft\n    prompt: y\n    depends_on: outlin\n"),
            (7, 17),
            "`depends_on` names an unknown step `outlin`",
            Some("outline"),
        ),
        case(
            "depends_on itself",
            v("  - name: a\n    prompt: x\n    depends_on: [a]\n"),
            (5, 18),
            "cannot depend on itself",
            None,
        ),
        case(
            "cycle of two",
            v("  - name: a\n    prompt: x\n    depends_on: b\n  - name: b\n    prompt: y\n    depends_on: a\n"),
            (8, 17),
            "dependency cycle: a → b → a",
            None,
        ),
        case(
            "cycle of three",
            v("  - name: a\n    prompt: x\n    depends_on: c\n  - name: b\n    prompt: \"{{ steps.a.output }}\"\n  - name: c\n    prompt: y\n    depends_on: [b]\n"),
            (7, 17),
            "dependency cycle: a → c → b → a",
            None,
        ),
        case(
            "reserved input name",
            "name: demo\ninputs:\n  steps: x\nsteps:\n  - name: a\n    prompt: x\n",
            (3, 3),
            "`steps` is reserved",
            None,
        ),
        // --- templates ---------------------------------------------------------------------
        case(
            "template syntax error (quoted)",
            v("  - name: a\n    prompt: \"Hello {{ name }\"\n"),
            (4, 28),
            "template syntax error in `prompt`",
            None,
        ),
        case(
            "template syntax error in a block, mapped line for line",
            v("  - name: a\n    prompt: |\n      First line.\n      Second {% if %} line.\n"),
            (6, 20),
            "template syntax error in `prompt`",
            None,
        ),
        case(
            "unknown filter, found before any run",
            v("  - name: a\n    prompt: |\n      First line.\n      Cut: {{ 'text' | truncat(3) }}\n"),
            (6, 24),
            "unknown filter `truncat`",
            None,
        ),
        case(
            "undefined input",
            "name: demo\ninputs:\n  topic: x\nsteps:\n  - name: a\n    prompt: \"About {{ topc }}.\"\n",
            (6, 23),
            "`topc` in `prompt` is not an input",
            Some("topic"),
        ),
        case(
            "undeclared inputs.x",
            "name: demo\ninputs:\n  topic: x\nsteps:\n  - name: a\n    system: \"{{ inputs.topik }}\"\n    prompt: x\n",
            (6, 17),
            "`inputs.topik` in `system` is not declared",
            Some("topic"),
        ),
        case(
            "undeclared env",
            "name: demo\nenv:\n  API_BASE: http://localhost\nsteps:\n  - name: a\n    prompt: \"{{ env.API_BSE }}\"\n",
            (6, 17),
            "`env.API_BSE` in `prompt` is not declared; add `API_BSE` under `env:`",
            Some("API_BASE"),
        ),
        case(
            "unknown step in a template",
            v("  - name: outline\n    prompt: x\n  - name: draft\n    prompt: \"{{ steps.outlne.output }}\"\n"),
            (6, 17),
            "unknown step `outlne`",
            Some("outline"),
        ),
        case(
            "step uses its own output",
            v("  - name: a\n    prompt: \"again: {{ steps.a.output }}\"\n"),
            (4, 24),
            "cannot use its own output",
            None,
        ),
        case(
            "step uses a later step",
            v("  - name: draft\n    prompt: \"{{ steps.critique.output }}\"\n  - name: critique\n    prompt: x\n"),
            (4, 17),
            "move `critique` above `draft` (steps may only use outputs of earlier steps)",
            None,
        ),
        case(
            "step attribute other than output",
            v("  - name: a\n    prompt: x\n  - name: b\n    prompt: \"{{ steps.a.result }}\"\n"),
            (6, 17),
            "`steps.a.result` does not exist",
            Some("steps.a.output"),
        ),
        case(
            "template too complex for the engine's stack",
            v(&format!("  - name: a\n    prompt: \"ok {{{{ {}x }}}}\"\n", "x.".repeat(20_000))),
            (4, 17),
            "template too complex",
            None,
        ),
        case(
            "long cycle is shortened",
            v(&(0..100)
                .map(|i| format!("  - name: s{i}\n    prompt: x\n    depends_on: s{}\n", (i + 1) % 100))
                .collect::<String>()),
            (302, 17),
            "dependency cycle: s0 → s1 → s2 → s3 → s4 → … (91 more) → s96 → s97 → s98 → s99 → s0",
            None,
        ),
        case(
            "dynamic step lookup",
            v("  - name: a\n    prompt: x\n  - name: b\n    prompt: \"{{ steps['a'].output }}\"\n"),
            (6, 17),
            "must be used as `steps.NAME.output`",
            None,
        ),
    ]
}

fn show(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_invalid_pipeline_gets_one_located_diagnostic() {
    let cases = cases();
    assert!(cases.len() >= 35, "the table shrank to {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let diagnostics = match validate(&case.text, &catalog()) {
            Ok(_) => {
                failures.push(format!("{}: accepted", case.name));
                continue;
            }
            Err(d) => d,
        };
        let matches = diagnostics.len() == 1
            && diagnostics.iter().any(|d| {
                d.line == case.line
                    && d.column == case.column
                    && d.message.contains(case.message)
                    && d.suggestion.as_deref() == case.suggestion
            });
        if !matches {
            failures.push(format!(
                "{}: expected exactly {}:{} `{}` (suggestion {:?}), got\n{}",
                case.name,
                case.line,
                case.column,
                case.message,
                case.suggestion,
                show(&diagnostics)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hostile_inputs_are_rejected_quickly() {
    for (name, text) in [
        ("alias bomb", alias_bomb().into_bytes()),
        ("deep lists", "[".repeat(1_000_000).into_bytes()),
        ("deep maps", "{a: ".repeat(250_000).into_bytes()),
    ] {
        let started = std::time::Instant::now();
        let result = validate(&text, &catalog());
        assert!(result.is_err(), "{name} accepted");
        // Generous for debug builds on a slow machine; expansion would take minutes and gigabytes.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{name} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn all_problems_of_a_file_are_reported_in_order() {
    let text = "\
name: research brief
descripton: x
defaults: { provider: simulated, max_tokens: abc }
inputs:
  topic: { default: \"event sourcing\" }
steps:
  - name: outline
    promt: \"Write about {{ topic }}.\"
  - name: draft
    prompt: \"{{ steps.outline.output }} {{ steps.critique.output }} {{ topc }}\"
    depends_on: [outlin]
  - name: critique
    prompt: \"Critique {{ steps.draft.output }}\"
    temperature: 9
";
    let diagnostics = validate(text.as_bytes(), &catalog()).expect_err("invalid");
    let got: Vec<(u32, u32, Option<&str>)> = diagnostics
        .iter()
        .map(|d| (d.line, d.column, d.suggestion.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (1, 7, Some("research_brief")),
            (2, 1, Some("description")),
            (3, 46, None),
            (7, 5, None),
            (8, 5, Some("prompt")),
            (10, 44, None),
            (10, 72, Some("topic")),
            (11, 18, Some("outline")),
            (14, 18, None),
        ],
        "{}",
        show(&diagnostics)
    );
}

/// A step without a usable name before it must not shift which step a message names.
#[test]
fn a_later_step_reference_names_the_right_step_after_a_nameless_one() {
    let text = "\
name: shifted
steps:
  - prompt: x
  - name: b
    prompt: \"{{ steps.c.output }}\"
  - name: c
    prompt: y
";
    let diagnostics = validate(text.as_bytes(), &catalog()).expect_err("invalid");
    let later = diagnostics
        .iter()
        .find(|d| d.message.contains("defined later"))
        .unwrap_or_else(|| panic!("no later-step diagnostic: {}", show(&diagnostics)));
    assert!(
        later.message.contains("step `b` uses the output of `c`")
            && later.message.contains("move `c` above `b`"),
        "{}",
        later.message
    );
}
