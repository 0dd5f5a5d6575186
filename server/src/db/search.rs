//! The full-text search index of step prompts and responses (`step_search`), kept off the ingest
//! path. The writer's transaction only queues a step whose texts changed (`step_search_queue`,
//! by trigger, migration `history`); [`run`] turns the queue into documents in the background,
//! a batch at a time, so a burst of ingest is acknowledged at the rate of its rows and indexed
//! just after, and an existing history is indexed after an upgrade without holding start-up.
//!
//! Several instances on one database share the queue: a batch takes its steps with `SKIP
//! LOCKED`, so two indexers never work on the same ones, and a step queued again while being
//! indexed (its response arrived) stays queued for the next batch.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

/// Steps a batch indexes at most: about 50 ms of Postgres' time for LLM-sized texts.
const BATCH: i64 = 1_000;
/// Between looks at an empty queue: how long a step may wait before it can be found.
const IDLE: Duration = Duration::from_millis(250);
/// After a failed batch (the database restarting, say): nothing is lost, the queue keeps it.
const RETRY: Duration = Duration::from_secs(2);

/// A step's searchable text: prompt and response, each cut at 50,000 characters (a tsvector
/// holds at most 1 MB, and a document that failed would stop its batch). 'simple': no
/// stemming or stop words, the texts are in any language and often code. Searches read it
/// with `websearch_to_tsquery('simple', …)`.
const DOCUMENT: &str = "to_tsvector('simple'::regconfig, \
     left(COALESCE(s.prompt, ''), 50000) || ' ' || left(COALESCE(s.response, ''), 50000))";

/// Indexes queued steps until `shutdown` turns true.
pub async fn run(pool: PgPool, mut shutdown: watch::Receiver<bool>) {
    loop {
        let wait = match index_batch(&pool).await {
            // A full batch: more are likely waiting.
            Ok(n) if n as i64 >= BATCH => Duration::ZERO,
            Ok(_) => IDLE,
            Err(error) => {
                tracing::warn!("search index: cannot index queued steps, will retry: {error}");
                RETRY
            }
        };
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Indexes up to [`BATCH`] queued steps in one transaction: a step with texts gets its document
/// (made again if it had one), a step whose texts were cleared (retention) loses it, and a
/// step deleted since it was queued is passed over. Returns how many were taken off the queue.
pub async fn index_batch(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let taken: i64 = sqlx::query_scalar(&format!(
        "WITH taken AS (
             DELETE FROM step_search_queue WHERE step_id IN (
                 SELECT step_id FROM step_search_queue ORDER BY step_id
                 LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING step_id
         ), indexed AS (
             INSERT INTO step_search (step_id, execution_id, document)
             SELECT s.id, s.execution_id, {DOCUMENT}
             FROM step_executions s JOIN taken t ON s.id = t.step_id
             WHERE s.prompt IS NOT NULL OR s.response IS NOT NULL
             ON CONFLICT (step_id) DO UPDATE SET document = EXCLUDED.document
         ), cleared AS (
             DELETE FROM step_search d USING taken t
             WHERE d.step_id = t.step_id AND NOT EXISTS (
                 SELECT 1 FROM step_executions s
                 WHERE s.id = t.step_id AND (s.prompt IS NOT NULL OR s.response IS NOT NULL))
         )
         SELECT count(*) FROM taken"
    ))
    .bind(BATCH)
    .fetch_one(pool)
    .await?;
    Ok(taken as u64)
}

/// Indexes until the queue is empty, waiting for steps another indexer holds: what a reader
/// calls when it needs every step stored so far to be searchable (tests, benchmarks).
pub async fn index_all(pool: &PgPool) -> Result<(), sqlx::Error> {
    loop {
        if index_batch(pool).await? == 0 {
            let queued: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM step_search_queue)")
                    .fetch_one(pool)
                    .await?;
            if !queued {
                return Ok(());
            }
            // Held by another indexer's batch, which commits or rolls back soon.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Steps waiting to be indexed, counted up to `cap` (a backlog after an upgrade can hold
/// millions; the count only has to say that some are waiting, and about how many).
pub async fn queued(pool: &PgPool, cap: i64) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM step_search_queue LIMIT $1) AS waiting",
    )
    .bind(cap)
    .fetch_one(pool)
    .await?;
    Ok(n as u64)
}
