//! Read queries behind the health check and the overview.

use std::time::Instant;

use app::models::{LogLine, MetricsSample, RunSummary, Snapshot, StoreSummary, StoreTotals};
use sqlx::{PgPool, Postgres, Transaction};

/// What one round trip to the database tells about it.
pub struct Ping {
    pub latency_ms: f64,
    pub server_version: String,
    pub running_executions: i64,
}

/// One query, so the latency is that of a single round trip.
pub async fn ping(pool: &PgPool) -> Result<Ping, sqlx::Error> {
    let started = Instant::now();
    let (server_version, running_executions): (String, i64) = sqlx::query_as(
        "SELECT current_setting('server_version'), \
                (SELECT count(*) FROM pipeline_executions WHERE status = 'running')",
    )
    .fetch_one(pool)
    .await?;
    Ok(Ping {
        latency_ms: started.elapsed().as_secs_f64() * 1_000.0,
        server_version,
        running_executions,
    })
}

pub async fn store_summary(pool: &PgPool) -> Result<StoreSummary, sqlx::Error> {
    let (executions, running, steps, pipelines, log_entries): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT t.executions, \
                    (SELECT count(*) FROM pipeline_executions WHERE status = 'running'), \
                    t.steps, \
                    (SELECT count(DISTINCT name) FROM pipeline_definitions), \
                    t.log_entries \
             FROM store_totals t",
        )
        .fetch_one(pool)
        .await?;
    Ok(StoreSummary {
        executions,
        running,
        steps,
        pipelines,
        log_entries,
    })
}

/// The columns of a [`RunSummary`] read from `pipeline_executions e` (the history reads them too).
pub(crate) const RUN_COLUMNS: &str = "
    e.id, e.pipeline_name, e.status, e.source, e.started_at, e.completed_at,
    (SELECT s.step_name FROM step_executions s
      WHERE s.execution_id = e.id AND s.status = 'running'
      ORDER BY s.started_at DESC LIMIT 1) AS current_step,
    (SELECT count(*) FROM step_executions s WHERE s.execution_id = e.id) AS steps_started,
    (SELECT count(*) FROM step_executions s
      WHERE s.execution_id = e.id AND s.status = 'completed') AS steps_completed,
    -- Engine runs list their steps in `config`; ingested runs have no known total (0).
    COALESCE(jsonb_array_length(CASE WHEN jsonb_typeof(e.config->'steps') = 'array'
                                     THEN e.config->'steps' END), 0)::int8 AS steps_total,
    GREATEST(e.total_tokens,
             (SELECT COALESCE(sum(s.total_tokens), 0) FROM step_executions s
               WHERE s.execution_id = e.id))::int8 AS total_tokens,
    GREATEST(e.cost_usd,
             (SELECT COALESCE(sum(s.cost_usd), 0) FROM step_executions s
               WHERE s.execution_id = e.id))::float8 AS cost_usd,
    e.error";

/// A read-only REPEATABLE READ transaction and the highest event stored as it sees the store:
/// the writer commits events and their effects together, so what the transaction reads is
/// exactly the effect of the events up to that `seq`, and a client that continues the live
/// stream from it misses nothing and sees nothing twice.
pub async fn read_at_stored_seq(
    pool: &PgPool,
) -> Result<(Transaction<'static, Postgres>, Option<i64>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let seq: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    Ok((tx, seq))
}

/// Read in one transaction with the highest stored event ([`read_at_stored_seq`]).
pub async fn snapshot(pool: &PgPool) -> Result<Snapshot, sqlx::Error> {
    let (mut tx, seq) = read_at_stored_seq(pool).await?;
    let active: Vec<RunSummary> = sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM pipeline_executions e
         WHERE e.status IN ('pending', 'running', 'paused')
         ORDER BY e.started_at DESC LIMIT 500"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let recent: Vec<RunSummary> = sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM pipeline_executions e
         WHERE e.status NOT IN ('pending', 'running', 'paused')
         ORDER BY e.started_at DESC LIMIT 20"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let (executions, running, tokens, cost_usd): (i64, i64, i64, f64) = sqlx::query_as(
        // The running totals (migration store_totals): one row, whatever the history's size;
        // `running` is read through the partial index of active runs, which stays small.
        "SELECT t.executions,
                (SELECT count(*) FROM pipeline_executions WHERE status = 'running'),
                t.tokens, t.cost_usd::float8
         FROM store_totals t",
    )
    .fetch_one(&mut *tx)
    .await?;
    let mut logs: Vec<LogLine> = sqlx::query_as(
        "SELECT level, message, logged_at, execution_id, step_name FROM log_entries
         ORDER BY logged_at DESC, id DESC LIMIT 50",
    )
    .fetch_all(&mut *tx)
    .await?;
    logs.reverse();
    let mut metrics: Vec<MetricsSample> = sqlx::query_as(
        "SELECT taken_at AS at, tokens_total, cost_total_usd::float8 AS cost_total_usd,
                running::int8 AS running, error_rate, latency_p50_ms, latency_p95_ms,
                latency_p99_ms, throughput_per_min
         FROM metrics_snapshots ORDER BY taken_at DESC LIMIT 90",
    )
    .fetch_all(&mut *tx)
    .await?;
    metrics.reverse();
    tx.commit().await?;
    Ok(Snapshot {
        seq,
        taken_at: chrono::Utc::now(),
        active,
        recent,
        totals: StoreTotals {
            executions,
            running,
            tokens,
            cost_usd,
        },
        logs,
        metrics,
    })
}
