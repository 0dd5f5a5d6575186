//! Retention: what is older than the cut-off is pruned — events, log lines, metrics snapshots,
//! the texts of ended runs — while newer rows, runs still going and every run's figures stay.

use chrono::{TimeDelta, Utc};
use serde_json::json;
use server::db::retention::{self, Pruned};
use sqlx::PgPool;
use uuid::Uuid;

/// A run started `days_ago` with one step holding a prompt and a response.
async fn run(pool: &PgPool, days_ago: i64, status: &str) -> Uuid {
    let id = Uuid::new_v4();
    let at = Utc::now() - TimeDelta::days(days_ago);
    sqlx::query(
        "INSERT INTO pipeline_executions (id, pipeline_name, status, started_at, results, \
         total_tokens, cost_usd) VALUES ($1, 'kept-figures', $2, $3, $4, 30, 0.25)",
    )
    .bind(id)
    .bind(status)
    .bind(at)
    .bind(json!({"only": "the answer"}))
    .execute(pool)
    .await
    .expect("run");
    sqlx::query(
        "INSERT INTO step_executions (execution_id, step_name, status, provider, model, \
         system_prompt, template, variables, prompt, response, total_tokens, cost_usd, \
         duration_ms, started_at) \
         VALUES ($1, 'only', 'completed', 'simulated', 'sim-small', 'be brief', 'Say {{ x }}', \
         '{\"x\": 1}', 'Say 1', 'the answer', 30, 0.25, 1200, $2)",
    )
    .bind(id)
    .bind(at)
    .execute(pool)
    .await
    .expect("step");
    sqlx::query("INSERT INTO log_entries (execution_id, level, message, logged_at) VALUES ($1, 'info', 'a line', $2)")
        .bind(id)
        .bind(at)
        .execute(pool)
        .await
        .expect("log line");
    sqlx::query(
        "INSERT INTO events (seq, name, execution_id, at, origin, payload) \
         VALUES (nextval('event_seq'), 'pipeline:started', $1, $2, $3, '{}')",
    )
    .bind(id)
    .bind(at)
    .bind(Uuid::new_v4())
    .execute(pool)
    .await
    .expect("event");
    sqlx::query(
        "INSERT INTO metrics_snapshots (taken_at, running, tokens_total, cost_total_usd, error_rate) \
         VALUES ($1, 0, 0, 0, 0)",
    )
    .bind(at)
    .execute(pool)
    .await
    .expect("snapshot");
    id
}

async fn texts(pool: &PgPool, id: Uuid) -> (Option<String>, Option<String>, bool) {
    let (prompt, response, results): (Option<String>, Option<String>, Option<serde_json::Value>) =
        sqlx::query_as(
            "SELECT s.prompt, s.response, x.results FROM step_executions s \
             JOIN pipeline_executions x ON x.id = s.execution_id WHERE x.id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("texts");
    (prompt, response, results.is_some())
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrations = "../migrations")]
async fn old_texts_and_logs_go_figures_and_newer_rows_stay(pool: PgPool) {
    let old = run(&pool, 40, "completed").await;
    let old_failed = run(&pool, 35, "failed").await;
    // Started long ago and still going: its texts are in use.
    let going = run(&pool, 45, "running").await;
    let recent = run(&pool, 2, "completed").await;
    let totals = |pool: PgPool| async move {
        sqlx::query_as::<_, (i64, i64, i64)>("SELECT executions, steps, tokens FROM store_totals")
            .fetch_one(&pool)
            .await
            .expect("totals")
    };
    let before = totals(pool.clone()).await;

    let (_keep, stop) = tokio::sync::watch::channel(false);
    let cutoff = Utc::now() - TimeDelta::days(30);
    let pruned = retention::prune(&pool, cutoff, &stop).await.expect("prune");
    assert_eq!(
        pruned,
        Pruned {
            // The going run's event and line are old too: events and lines go by their time.
            events: 3,
            log_entries: 3,
            // The going run is the oldest: the texts wait until it ends.
            runs: 0,
            metrics_snapshots: 3,
        }
    );
    assert_eq!(
        texts(&pool, old).await,
        (Some("Say 1".into()), Some("the answer".into()), true)
    );

    // Once it has ended, the next round clears the three old runs and leaves the recent one.
    sqlx::query("UPDATE pipeline_executions SET status = 'completed' WHERE id = $1")
        .bind(going)
        .execute(&pool)
        .await
        .expect("end it");
    let pruned = retention::prune(&pool, cutoff, &stop)
        .await
        .expect("prune again");
    assert_eq!(pruned.runs, 3);
    for id in [old, old_failed, going] {
        assert_eq!(texts(&pool, id).await, (None, None, false), "{id}");
    }
    assert_eq!(
        texts(&pool, recent).await,
        (Some("Say 1".into()), Some("the answer".into()), true)
    );
    assert_eq!(count(&pool, "events").await, 1);
    assert_eq!(count(&pool, "log_entries").await, 1);
    assert_eq!(count(&pool, "metrics_snapshots").await, 1);

    // The figures stay: runs, steps and tokens in the totals, and each step's own.
    assert_eq!(totals(pool.clone()).await, before);
    let (tokens, duration): (i32, i64) = sqlx::query_as(
        "SELECT total_tokens, duration_ms FROM step_executions WHERE execution_id = $1",
    )
    .bind(old)
    .fetch_one(&pool)
    .await
    .expect("figures");
    assert_eq!((tokens, duration), (30, 1200));

    // A third round has nothing left to do, and starts where the last one stopped.
    let pruned = retention::prune(&pool, cutoff, &stop)
        .await
        .expect("prune a third time");
    assert_eq!(pruned, Pruned::default());
}
