//! The pipeline studio's server side through the `Backend` the pages call: saving versions on
//! top of the one the editor opened, drafts, conflicts under concurrency, delete, the list's
//! figures, the validator's check with its graph, the editor schema, and runs.

use crate::common::{self, refused};

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use app::{
    backend::Backend,
    error::AppError,
    models::{RunStatus, SaveOutcome},
};
use serde_json::{json, Map, Value};
use server::{
    engine::{library, StartRequest},
    state::AppState,
};
use sqlx::PgPool;
use uuid::Uuid;

/// The built-in providers plus `instant`, a simulator that answers at once.
async fn studio(pool: PgPool) -> AppState {
    common::state_with_providers(pool, BTreeMap::new(), &|_| None, Vec::new()).await
}

fn brief(prompt: &str) -> String {
    format!(
        "name: brief
description: A short brief
inputs:
  topic:
    description: What about
  tone: calm
defaults:
  provider: instant
steps:
  - name: outline
    prompt: {prompt} {{{{ topic }}}}
  - name: draft
    prompt: Expand {{{{ steps.outline.output }}}} in a {{{{ tone }}}} tone
"
    )
}

async fn save(
    state: &AppState,
    yaml: &str,
    base: Option<u32>,
    note: &str,
    draft: bool,
) -> SaveOutcome {
    state.save(yaml, base, note, draft).await.expect("save")
}

/// Waits for a run to be stored as finished (the engine answers once it is stored as started).
async fn finished(state: &AppState, id: Uuid) -> app::models::ExecutionDetail {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(detail) = state.execution(id).await {
            if !detail.status.is_active() {
                return detail;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn saves_follow_the_version_the_editor_opened(pool: PgPool) {
    let state = studio(pool).await;
    let first = brief("Outline");
    let second = brief("List the points of");
    assert_eq!(
        save(&state, &first, None, "first", false).await,
        SaveOutcome::Saved { version: 1 }
    );
    assert_eq!(
        save(&state, &second, Some(1), "shorter", false).await,
        SaveOutcome::Saved { version: 2 }
    );

    // An editor still on version 1: nothing is stored, and it gets the newer text.
    let stale = save(&state, &brief("Something else"), Some(1), "", false).await;
    let SaveOutcome::Conflict { theirs } = stale else {
        panic!("expected a conflict, got {stale:?}");
    };
    assert_eq!((theirs.version, theirs.yaml.as_str()), (2, second.as_str()));
    // A new pipeline under a taken name is a conflict too.
    assert!(matches!(
        save(&state, &first, None, "", false).await,
        SaveOutcome::Conflict { .. }
    ));
    // The same text again is the same version.
    assert_eq!(
        save(&state, &second, Some(2), "again", false).await,
        SaveOutcome::Saved { version: 2 }
    );

    let opened = state.pipeline("brief", None).await.expect("open");
    assert_eq!((opened.name.as_str(), opened.version), ("brief", 2));
    assert_eq!(opened.yaml, second);
    assert!(!opened.draft);
    let history: Vec<(u32, &str)> = opened
        .versions
        .iter()
        .map(|v| (v.version, v.note.as_str()))
        .collect();
    assert_eq!(history, [(2, "shorter"), (1, "first")]);
    let old = state.pipeline("brief", Some(1)).await.expect("open v1");
    assert_eq!((old.version, old.yaml.as_str()), (1, first.as_str()));
    assert!(matches!(
        state.pipeline("brief", Some(3)).await,
        Err(AppError::NotFound(_))
    ));
    assert!(matches!(
        state.pipeline("nothing", None).await,
        Err(AppError::NotFound(_))
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn of_two_saves_on_one_base_exactly_one_is_stored(pool: PgPool) {
    let state = Arc::new(studio(pool).await);
    save(&state, &brief("v1"), None, "", false).await;
    for base in 1..=5u32 {
        // Both start together; whichever takes the save lock second finds a newer version.
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|who| {
                let (state, barrier) = (state.clone(), barrier.clone());
                tokio::spawn(async move {
                    let text = brief(&format!("{who} {base}"));
                    barrier.wait().await;
                    (
                        text.clone(),
                        save(&state, &text, Some(base), who, false).await,
                    )
                })
            })
            .collect();
        let mut saved = Vec::new();
        let mut conflicts = Vec::new();
        for task in tasks {
            match task.await.expect("task") {
                (text, SaveOutcome::Saved { version }) => saved.push((text, version)),
                (_, SaveOutcome::Conflict { theirs }) => conflicts.push(theirs),
                (_, other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(saved.len(), 1, "round {base}: {saved:?}");
        assert_eq!(conflicts.len(), 1, "round {base}");
        let (text, version) = &saved[0];
        assert_eq!(*version, base + 1);
        assert_eq!(
            (conflicts[0].version, &conflicts[0].yaml),
            (base + 1, text),
            "the loser sees the winner's text"
        );
    }
    let opened = state.pipeline("brief", None).await.expect("open");
    assert_eq!(opened.versions.len(), 6);
}

#[sqlx::test(migrations = "../migrations")]
async fn drafts_are_stored_but_never_run(pool: PgPool) {
    let state = studio(pool).await;
    let broken = "name: brief\nsteps:\n  - name: outline\n    promt: Hi\n";
    let SaveOutcome::Invalid { problems } = save(&state, broken, None, "", false).await else {
        panic!("a text with problems is not saved unless as a draft");
    };
    assert!(problems
        .iter()
        .any(|p| (p.line, p.column) == (4, 5) && p.suggestion.as_deref() == Some("prompt")));
    assert!(matches!(
        state.pipeline("brief", None).await,
        Err(AppError::NotFound(_))
    ));

    assert_eq!(
        save(&state, broken, None, "half done", true).await,
        SaveOutcome::Saved { version: 1 }
    );
    let opened = state.pipeline("brief", None).await.expect("open");
    assert!(opened.draft && opened.versions[0].draft);
    let message = refused(state.run("brief", 1, Map::new(), Vec::new()).await);
    assert!(message.contains("draft"), "{message}");

    let message = refused(state.save("name: brief\n\0", Some(1), "", true).await);
    assert!(message.contains("NUL"), "{message}");

    // A draft without a usable name has nowhere to go.
    let nameless = save(&state, "steps: [", None, "", true).await;
    assert!(
        matches!(nameless, SaveOutcome::Invalid { .. }),
        "{nameless:?}"
    );

    // Fixed: version 2 runs; a run naming no version skips a newer draft.
    let fixed = brief("Outline");
    assert_eq!(
        save(&state, &fixed, Some(1), "fixed", false).await,
        SaveOutcome::Saved { version: 2 }
    );
    assert_eq!(
        save(&state, broken, Some(2), "trying something", true).await,
        SaveOutcome::Saved { version: 3 }
    );
    let started = state
        .engine
        .start(StartRequest {
            pipeline: Some("brief".into()),
            inputs: Map::from_iter([("topic".to_owned(), json!("tides"))]),
            ..StartRequest::default()
        })
        .await
        .expect("the newest runnable version starts");
    assert_eq!(started.version, 2);
    finished(&state, started.execution_id).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn runs_check_their_inputs_and_env(pool: PgPool) {
    let state = studio(pool).await;
    let text = format!("{}env:\n  REGION: eu\n", brief("Outline"));
    save(&state, &text, None, "", false).await;
    let topic = |value: &str| Map::from_iter([("topic".to_owned(), json!(value))]);

    let message = refused(state.run("brief", 1, Map::new(), Vec::new()).await);
    assert!(
        message.contains("`topic`") && message.contains("required"),
        "{message}"
    );
    let mut extra = topic("tides");
    extra.insert("topik".into(), json!("x"));
    let message = refused(state.run("brief", 1, extra, Vec::new()).await);
    assert!(message.contains("`topik`"), "{message}");
    let message = refused(
        state
            .run(
                "brief",
                1,
                topic("tides"),
                vec![("ZONE".into(), "x".into())],
            )
            .await,
    );
    assert!(message.contains("`ZONE`"), "{message}");
    assert!(matches!(
        state.run("brief", 9, topic("tides"), Vec::new()).await,
        Err(AppError::NotFound(_))
    ));

    let id = state
        .run(
            "brief",
            1,
            topic("tides"),
            vec![("REGION".into(), "us".into())],
        )
        .await
        .expect("run");
    let run = finished(&state, id).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!((run.pipeline.as_str(), run.version), ("brief", Some(1)));
    assert_eq!(run.inputs["topic"], json!("tides"));
    assert_eq!(run.inputs["tone"], json!("calm"));
}

#[sqlx::test(migrations = "../migrations")]
async fn delete_removes_every_version_and_keeps_the_runs(pool: PgPool) {
    let state = studio(pool).await;
    save(&state, &brief("Outline"), None, "", false).await;
    save(&state, &brief("Sketch"), Some(1), "", false).await;
    let topic = Map::from_iter([("topic".to_owned(), Value::from("tides"))]);
    let id = state.run("brief", 2, topic, Vec::new()).await.expect("run");
    finished(&state, id).await;

    state.delete("brief").await.expect("delete");
    assert!(matches!(
        state.pipeline("brief", None).await,
        Err(AppError::NotFound(_))
    ));
    assert!(state.pipelines().await.expect("list").is_empty());
    assert!(matches!(
        state.delete("brief").await,
        Err(AppError::NotFound(_))
    ));
    let run = state
        .execution(id)
        .await
        .expect("the run is still readable");
    assert_eq!((run.pipeline.as_str(), run.version), ("brief", Some(2)));
    assert_eq!(run.steps.len(), 2);
    assert!(!state.run_log(id).await.expect("its log").is_empty());

    // The name is free again: a new pipeline starts at version 1.
    assert_eq!(
        save(&state, &brief("Outline"), None, "", false).await,
        SaveOutcome::Saved { version: 1 }
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_list_shows_last_run_and_todays_runs_and_cost(pool: PgPool) {
    let state = studio(pool.clone()).await;
    save(&state, &brief("Outline"), None, "", false).await;
    let quiet = "name: quiet\nsteps:\n  - name: only\n    prompt: Hi\n";
    save(&state, quiet, None, "", false).await;
    save(&state, "name: quiet\nsteps: [", Some(1), "", true).await;

    // Runs at fixed times around midnight UTC, so the figures do not depend on when this runs:
    // one yesterday (not counted), two today, the second failed with its cost only in its steps.
    let yesterday = Uuid::new_v4();
    let completed = Uuid::new_v4();
    let failed = Uuid::new_v4();
    for (id, status, offset, cost) in [
        (yesterday, "completed", "-1 hour", 5.0),
        (completed, "completed", "1 second", 0.25),
        (failed, "failed", "2 seconds", 0.0),
    ] {
        sqlx::query(
            "INSERT INTO pipeline_executions (id, pipeline_name, pipeline_version, status, cost_usd, started_at)
             VALUES ($1, 'brief', 1, $2, $3, date_trunc('day', now(), 'UTC') + $4::interval)",
        )
        .bind(id)
        .bind(status)
        .bind(cost)
        .bind(offset)
        .execute(&pool)
        .await
        .expect("insert run");
    }
    sqlx::query(
        "INSERT INTO step_executions (execution_id, step_name, status, cost_usd)
         VALUES ($1, 'outline', 'completed', 0.5), ($1, 'draft', 'failed', 0.25)",
    )
    .bind(failed)
    .execute(&pool)
    .await
    .expect("insert steps");

    let list = state.pipelines().await.expect("list");
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["brief", "quiet"]);
    let brief = &list[0];
    assert_eq!(brief.description.as_deref(), Some("A short brief"));
    assert_eq!((brief.version, brief.draft, brief.steps), (1, false, 2));
    let last = brief.last_run.as_ref().expect("a last run");
    assert_eq!((last.id, last.status), (failed, RunStatus::Failed));
    assert_eq!(brief.runs_today, 2);
    assert!(
        (brief.cost_today_usd - 1.0).abs() < 1e-9,
        "{}",
        brief.cost_today_usd
    );
    let quiet = &list[1];
    // The newest is a draft; the steps are the newest runnable version's.
    assert_eq!((quiet.version, quiet.draft, quiet.steps), (2, true, 1));
    assert_eq!((quiet.last_run.as_ref(), quiet.runs_today), (None, 0));
    assert_eq!(quiet.cost_today_usd, 0.0);

    // Each pipeline's runs are reached through the index on (pipeline_name, started_at), never
    // by reading every execution (seq scans off so the tiny test tables do not hide the plan).
    let mut tx = pool.begin().await.expect("tx");
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .expect("set");
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", library::LISTING))
        .fetch_all(&mut *tx)
        .await
        .expect("explain");
    let plan = plan.join("\n");
    let executions: Vec<&str> = plan
        .lines()
        .filter(|line| line.contains("pipeline_executions"))
        .collect();
    assert!(!executions.is_empty(), "{plan}");
    assert!(
        executions
            .iter()
            .all(|line| line.contains("pipeline_executions_by_pipeline")),
        "{plan}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn check_reports_problems_where_they_are_and_keeps_the_graph(pool: PgPool) {
    let state = studio(pool).await;
    let text = "name: brief
inputs:
  topic:
steps:
  - name: outline
    promt: Outline {{ topic }}
  - name: draft
    prompt: Expand {{ steps.review.output }}
  - name: review
    provider: instant
    model: sim-large
    prompt: Review {{ steps.outline.output }}
";
    let check = state.check(text).await;
    let at: Vec<(u32, u32)> = check.problems.iter().map(|p| (p.line, p.column)).collect();
    let typo = check
        .problems
        .iter()
        .find(|p| (p.line, p.column) == (6, 5))
        .unwrap_or_else(|| panic!("the typo'd key at 6:5: {at:?}"));
    assert_eq!(typo.suggestion.as_deref(), Some("prompt"));
    let later = check
        .problems
        .iter()
        .find(|p| (p.line, p.column) == (8, 23))
        .unwrap_or_else(|| panic!("the later step at 8:23: {at:?}"));
    assert!(later.message.contains("later"), "{}", later.message);
    assert_eq!(check.name.as_deref(), Some("brief"));
    let graph: Vec<(&str, u32, Vec<&str>)> = check
        .steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.line,
                s.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        graph,
        [
            ("outline", 5, vec![]),
            ("draft", 7, vec!["review"]),
            ("review", 9, vec!["outline"]),
        ]
    );
    let review = &check.steps[2];
    assert_eq!(
        (review.provider.as_str(), review.model.as_str()),
        ("instant", "sim-large")
    );
    assert_eq!(check.steps[0].provider, "simulated");
    assert!(check.cycle.is_empty());
    assert_eq!(check.inputs.len(), 1);
    assert_eq!(
        (check.inputs[0].name.as_str(), &check.inputs[0].default),
        ("topic", &None)
    );

    let cyclic = "name: loop
steps:
  - name: a
    depends_on: [b]
    prompt: A
  - name: b
    prompt: B {{ steps.a.output }}
";
    let check = state.check(cyclic).await;
    assert_eq!(check.cycle.len(), 2, "{check:?}");
    assert!(check.cycle.contains(&"a".to_owned()) && check.cycle.contains(&"b".to_owned()));
    assert!(check.problems.iter().any(|p| p.message.contains("cycle")));

    let valid = state.check(&brief("Outline")).await;
    assert!(valid.problems.is_empty(), "{valid:?}");
    assert_eq!(valid.steps.len(), 2);

    let huge = format!("name: big\n# {}\n", "x".repeat(pipeline::MAX_BYTES));
    let check = state.check(&huge).await;
    assert_eq!(check.problems.len(), 1);
    assert!(check.problems[0].message.contains("at most"), "{check:?}");
    assert!(check.steps.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn the_editor_schema_is_the_validators_and_this_servers(pool: PgPool) {
    let state = studio(pool).await;
    let schema = state.editor_schema().await;
    let key = |place: &str, name: &str| {
        schema
            .keys
            .iter()
            .find(|k| k.place == place && k.name == name)
            .unwrap_or_else(|| panic!("no {place} key `{name}`"))
    };
    for place in ["top", "defaults", "step", "retry", "input"] {
        assert!(schema.keys.iter().any(|k| k.place == place), "{place}");
    }
    assert_eq!(
        key("defaults", "max_tokens").default.as_deref(),
        Some("512")
    );
    assert_eq!(
        key("step", "max_tokens").default.as_deref(),
        Some("`defaults.max_tokens`")
    );
    assert_eq!(key("step", "prompt").default.as_deref(), Some("required"));
    assert_eq!(key("step", "token_budget").default, None);
    assert_eq!(key("retry", "attempts").kind, "whole number from 1 to 10");
    assert!(!key("step", "depends_on").doc.is_empty());

    let provider = |name: &str| {
        schema
            .providers
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no provider `{name}`: {:?}", schema.providers))
    };
    assert_eq!(provider("instant").kind, "simulated");
    assert!(provider("instant").models.contains(&"sim-small".to_owned()));
    assert!(provider("openai").models.contains(&"gpt-4o".to_owned()));
    assert_eq!(provider("anthropic").kind, "anthropic");
    assert!(schema.filters.iter().any(|(name, _)| name == "upper"));
    assert_eq!(
        usize::try_from(schema.max_bytes).expect("fits"),
        pipeline::MAX_BYTES
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn an_unchanged_file_does_not_replace_a_studio_edit(pool: PgPool) {
    let state = studio(pool.clone()).await;
    let catalog = state.engine.catalog().clone();
    let file = brief("Outline");
    let loaded = library::store(&pool, &file, &catalog, library::Arrival::File)
        .await
        .expect("load the file");
    assert_eq!(loaded.version, 1);
    assert_eq!(
        save(&state, &brief("Edited"), Some(1), "", false).await,
        SaveOutcome::Saved { version: 2 }
    );
    // A restart loads the folder again: the file has not changed, the edit stays the newest.
    let again = library::store(&pool, &file, &catalog, library::Arrival::File)
        .await
        .expect("load again");
    assert_eq!(again.version, 1);
    assert_eq!(
        state.pipeline("brief", None).await.expect("open").version,
        2
    );
    // A changed file is a new version.
    let changed = library::store(&pool, &brief("Changed"), &catalog, library::Arrival::File)
        .await
        .expect("load the changed file");
    assert_eq!(changed.version, 3);
}
