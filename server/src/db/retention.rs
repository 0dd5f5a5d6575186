//! Retention (`--retain-days`): what is older than the cut-off is pruned in the background, in
//! small batches so that no statement holds locks or I/O for long:
//! - the event log (`events`) and the log lines (`log_entries`) are deleted;
//! - the prompts, system prompts, templates, variables and responses of runs that started
//!   before the cut-off and have ended are cleared, with the runs' results (the steps' outputs);
//!   the rows stay, with status, provider, model, tokens, cost and timings, so history, totals
//!   and analytics keep counting them;
//! - `metrics_snapshots` rows are deleted.
//!
//! Runs' inputs are kept, so an old run can still be run again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::watch;

/// Rows a statement touches at most.
const BATCH: i64 = 2_000;
/// Between statements: other work goes first.
const PAUSE: Duration = Duration::from_millis(50);
/// Between rounds, once everything old enough is pruned.
const EVERY: Duration = Duration::from_secs(3_600);

/// What one round pruned.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub log_entries: u64,
    pub runs: u64,
    pub metrics_snapshots: u64,
}

impl Pruned {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Prunes what is older than `days` now and every hour, until `shutdown` turns true.
pub async fn run(pool: PgPool, days: u32, mut shutdown: watch::Receiver<bool>) {
    let keep = chrono::TimeDelta::days(i64::from(days));
    loop {
        let cutoff = Utc::now() - keep;
        // Checks `shutdown` between its statements, so a shutdown waits for one at most.
        match prune(&pool, cutoff, &shutdown).await {
            Ok(pruned) if !pruned.is_empty() => tracing::info!(
                "retention ({days} days): pruned {} events, {} log lines, the texts of {} runs \
                 and {} metrics snapshots older than {cutoff}",
                pruned.events,
                pruned.log_entries,
                pruned.runs,
                pruned.metrics_snapshots
            ),
            Ok(_) => {}
            // The next round tries again; nothing is lost by waiting.
            Err(error) => tracing::warn!("retention: cannot prune, will retry: {error}"),
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Prunes everything older than `cutoff`, a batch at a time; stops early on shutdown.
pub async fn prune(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Pruned, sqlx::Error> {
    let mut pruned = Pruned::default();
    let stopping = || *shutdown.borrow();
    // The event log is numbered in time order: its oldest rows come first by `seq`, so each
    // batch reads the first rows of the primary key and deletes those that are old enough.
    loop {
        let deleted = sqlx::query(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT $1) \
             AND at < $2",
        )
        .bind(BATCH)
        .bind(cutoff)
        .execute(pool)
        .await?
        .rows_affected();
        pruned.events += deleted;
        if deleted == 0 || stopping() {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    pruned.log_entries =
        delete_by_time(pool, "log_entries", "logged_at", cutoff, &stopping).await?;
    pruned.metrics_snapshots =
        delete_by_time(pool, "metrics_snapshots", "taken_at", cutoff, &stopping).await?;
    pruned.runs = clear_texts(pool, cutoff, &stopping).await?;
    Ok(pruned)
}

/// Deletes `table`'s rows whose `at` is before `cutoff`, oldest first, through its time index.
async fn delete_by_time(
    pool: &PgPool,
    table: &str,
    at: &str,
    cutoff: DateTime<Utc>,
    stopping: &impl Fn() -> bool,
) -> Result<u64, sqlx::Error> {
    let statement = format!(
        "DELETE FROM {table} WHERE id IN \
         (SELECT id FROM {table} WHERE {at} < $1 ORDER BY {at} LIMIT $2)"
    );
    let mut total = 0;
    loop {
        let deleted = sqlx::query(&statement)
            .bind(cutoff)
            .bind(BATCH)
            .execute(pool)
            .await?
            .rows_affected();
        total += deleted;
        if deleted == 0 || stopping() {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Clears the texts of ended runs that started before `cutoff`, oldest first from where the
/// last round stopped (kept in `retention_progress`, by start time and id). A run still going
/// stops the round: it and those after it are left for a later one.
async fn clear_texts(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
    stopping: &impl Fn() -> bool,
) -> Result<u64, sqlx::Error> {
    const RUNS: usize = 500;
    let mut runs = 0;
    loop {
        let mut tx = pool.begin().await?;
        let from: Option<(DateTime<Utc>, uuid::Uuid)> =
            sqlx::query_as("SELECT through, through_id FROM retention_progress")
                .fetch_optional(&mut *tx)
                .await?;
        let (from_at, from_id) = from.unzip();
        // The next runs by start time, through the time index.
        let batch: Vec<(uuid::Uuid, DateTime<Utc>, bool)> = sqlx::query_as(
            "SELECT id, started_at, status IN ('pending', 'running', 'paused') \
             FROM pipeline_executions \
             WHERE started_at >= coalesce($1, '-infinity') AND started_at < $3 \
             AND ($1 IS NULL OR (started_at, id) > ($1, $2)) \
             ORDER BY started_at, id LIMIT $4",
        )
        .bind(from_at)
        .bind(from_id)
        .bind(cutoff)
        .bind(RUNS as i64)
        .fetch_all(&mut *tx)
        .await?;
        let ended: Vec<uuid::Uuid> = batch
            .iter()
            .take_while(|(_, _, going)| !going)
            .map(|(id, _, _)| *id)
            .collect();
        let last = ended.len().checked_sub(1).and_then(|i| batch.get(i));
        let Some(&(last_id, last_at, _)) = last else {
            // Nothing ended to clear: none left, or the next one is still going.
            return Ok(runs);
        };
        sqlx::query(
            "UPDATE step_executions SET system_prompt = NULL, template = NULL, \
             variables = NULL, prompt = NULL, response = NULL \
             WHERE execution_id = ANY($1) AND (prompt IS NOT NULL OR response IS NOT NULL \
             OR system_prompt IS NOT NULL OR template IS NOT NULL OR variables IS NOT NULL)",
        )
        .bind(&ended)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE pipeline_executions SET results = NULL \
             WHERE id = ANY($1) AND results IS NOT NULL",
        )
        .bind(&ended)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO retention_progress (through, through_id) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET through = $1, through_id = $2",
        )
        .bind(last_at)
        .bind(last_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        runs += ended.len() as u64;
        if ended.len() < RUNS || stopping() {
            return Ok(runs);
        }
        tokio::time::sleep(PAUSE).await;
    }
}
