//! The studio's batch calls through the `Backend` the pages call: CSV and JSON-lines rows read
//! and checked against the pipeline's inputs with each bad row's line; a batch started from a
//! saved version, its progress by status, and cancel (queued runs never start).

use crate::common::{self, object, refused};

use std::{collections::BTreeMap, time::Duration};

use app::{
    backend::Backend,
    error::AppError,
    models::{BatchFormat, BatchProgress, RunStatus, SaveOutcome},
};
use providers::{ProviderConfig, SimulatedConfig};
use serde_json::json;
use server::state::AppState;
use sqlx::PgPool;
use uuid::Uuid;

/// The built-in providers plus `instant` (answers at once) and `stalls` (never finishes).
async fn studio(pool: PgPool) -> AppState {
    let mut configured = BTreeMap::new();
    configured.insert(
        "stalls".to_owned(),
        ProviderConfig::Simulated(SimulatedConfig {
            tokens_per_second: 200.0,
            first_token_ms: 0,
            stall_rate: 1.0,
            ..SimulatedConfig::default()
        }),
    );
    common::state_with_providers(pool, configured, &|_| None, Vec::new()).await
}

/// `topic` is required, `tone` has a default.
fn topics(provider: &str) -> String {
    format!(
        "name: topics
inputs:
  topic:
    description: What about
  tone: calm
defaults:
  provider: {provider}
  max_tokens: 8
steps:
  - name: only
    prompt: Write about {{{{ topic }}}} in a {{{{ tone }}}} tone
"
    )
}

/// The lines of the row errors, and each message, in order.
fn error_lines(rows: &app::models::BatchRows) -> Vec<(u64, &str)> {
    rows.errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn csv_rows_are_read_with_quoted_fields_and_bad_rows_by_line(pool: PgPool) {
    let state = studio(pool).await;
    let yaml = topics("instant");
    // Row 2 quotes a comma and a line break, so it spans lines 3 and 4; line 5 has one field
    // too many; line 6 is fine again.
    let text = "topic,tone\nraft,dry\n\"paxos, made simple\",\"two\nlines\"\ngossip,fun,extra\nleases,plain\n";
    let rows = state
        .parse_batch(&yaml, text, BatchFormat::Csv)
        .await
        .expect("parse");
    assert_eq!(
        rows.rows,
        vec![
            object(json!({"topic": "raft", "tone": "dry"})),
            object(json!({"topic": "paxos, made simple", "tone": "two\nlines"})),
            object(json!({"topic": "leases", "tone": "plain"})),
        ]
    );
    let errors = error_lines(&rows);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 5);
    assert!(errors[0].1.contains("3 fields"), "{errors:?}");

    // Checked as a run checks its inputs: an unknown column and a missing required input make
    // every row an error, each naming what to fix.
    let rows = state
        .parse_batch(&yaml, "topik,tone\nraft,dry\npaxos,fun", BatchFormat::Csv)
        .await
        .expect("parse");
    assert!(rows.rows.is_empty());
    let errors = error_lines(&rows);
    assert_eq!(
        errors.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![2, 3],
        "{errors:?}"
    );
    assert!(
        errors[0].1.contains("unknown input `topik`") && errors[0].1.contains("topic, tone"),
        "{errors:?}"
    );
    let rows = state
        .parse_batch(&yaml, "tone\ndry\n", BatchFormat::Csv)
        .await
        .expect("parse");
    assert!(rows.errors[0].message.contains("input `topic` is required"));

    // A header without names, and an invalid pipeline, are refused with what to fix.
    assert!(refused(
        state
            .parse_batch(&yaml, "topic,,tone\na,b,c", BatchFormat::Csv)
            .await
    )
    .contains("every column needs an input name"));
    assert!(refused(
        state
            .parse_batch("name: x\nsteps: []\n", "topic\na", BatchFormat::Csv)
            .await
    )
    .contains("not valid"));
}

#[sqlx::test(migrations = "../migrations")]
async fn json_lines_keep_their_types_and_bad_lines_are_named(pool: PgPool) {
    let state = studio(pool).await;
    let text = [
        r#"{"topic": "raft"}"#,
        "",
        r#"{"tone": "dry"}"#,
        "not json",
        r#"{"topic": "paxos", "topik": 1}"#,
        "[1, 2]",
        r#"  {"topic": 42, "tone": "fun"}  "#,
    ]
    .join("\n");
    assert_eq!(BatchFormat::detect(&text), BatchFormat::JsonLines);
    assert_eq!(BatchFormat::detect("topic\n{"), BatchFormat::Csv);
    let rows = state
        .parse_batch(&topics("instant"), &text, BatchFormat::JsonLines)
        .await
        .expect("parse");
    assert_eq!(
        rows.rows,
        vec![
            object(json!({"topic": "raft"})),
            object(json!({"topic": 42, "tone": "fun"}))
        ]
    );
    let errors = error_lines(&rows);
    assert_eq!(
        errors.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![3, 4, 5, 6],
        "{errors:?}"
    );
    assert!(
        errors[0].1.contains("input `topic` is required"),
        "{errors:?}"
    );
    assert!(errors[1].1.starts_with("not JSON"), "{errors:?}");
    assert!(errors[2].1.contains("unknown input `topik`"), "{errors:?}");
    assert!(errors[3].1.contains("not a list"), "{errors:?}");
}

/// Polls the batch's progress until `done` holds (the runs move on their own: no fixed sleep).
async fn progress_until(
    state: &AppState,
    id: Uuid,
    done: impl Fn(&BatchProgress) -> bool,
) -> BatchProgress {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let progress = state.batch_progress(id).await.expect("progress");
        if done(&progress) {
            return progress;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "batch {id} stayed at {progress:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn saved(state: &AppState, yaml: &str) -> u32 {
    match state.save(yaml, None, "", false).await.expect("save") {
        SaveOutcome::Saved { version } => version,
        other => panic!("not saved: {other:?}"),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_runs_its_rows_and_reports_progress(pool: PgPool) {
    let state = studio(pool).await;
    let version = saved(&state, &topics("instant")).await;
    let rows = state
        .parse_batch(
            &topics("instant"),
            "{\"topic\": \"raft\"}\n{\"topic\": \"paxos\"}\n{\"topic\": \"gossip\"}",
            BatchFormat::JsonLines,
        )
        .await
        .expect("parse")
        .rows;
    let id = state
        .start_batch("topics", version, rows, 2)
        .await
        .expect("start");
    let progress = progress_until(&state, id, |p| p.count(RunStatus::Completed) == 3).await;
    assert_eq!((progress.stored(), progress.active()), (3, 0));
    // An unknown batch has nothing stored; a finished one has nothing to cancel.
    assert_eq!(
        state
            .batch_progress(Uuid::new_v4())
            .await
            .expect("progress"),
        BatchProgress::default()
    );
    assert!(refused(state.cancel_batch(id).await).contains("no runs in progress"));
    // A row the version does not accept is named, and nothing starts.
    let bad = vec![object(json!({"topic": "a"})), object(json!({"topik": "b"}))];
    assert!(refused(state.start_batch("topics", version, bad, 2).await)
        .contains("row 2 would not run: unknown input `topik`"));
    assert!(matches!(
        state.start_batch("topics", 9, Vec::new(), 2).await,
        Err(AppError::Refused(_) | AppError::NotFound(_))
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn cancelling_a_batch_stops_its_runs_and_its_queue(pool: PgPool) {
    let state = studio(pool).await;
    let version = saved(&state, &topics("stalls")).await;
    let rows: Vec<_> = ["raft", "paxos", "gossip", "leases"]
        .into_iter()
        .map(|topic| object(json!({ "topic": topic })))
        .collect();
    let id = state
        .start_batch("topics", version, rows, 2)
        .await
        .expect("start");
    // Two run (and stall); the other two wait for a slot and are not stored yet.
    let progress = progress_until(&state, id, |p| p.count(RunStatus::Running) == 2).await;
    assert_eq!(progress.stored(), 2, "{progress:?}");

    assert_eq!(state.cancel_batch(id).await.expect("cancel"), 2);
    let progress = progress_until(&state, id, |p| p.count(RunStatus::Cancelled) == 2).await;
    assert_eq!(progress.active(), 0, "{progress:?}");
    // The freed slots start nothing: the queued rows never run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let progress = state.batch_progress(id).await.expect("progress");
    assert_eq!(progress.stored(), 2, "{progress:?}");
}
