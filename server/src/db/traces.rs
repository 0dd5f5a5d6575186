//! The reads behind OpenTelemetry trace ingest (`crate::otlp`): what a trace's stored steps add
//! up to, and which traces are still open. A trace's execution is marked by `config.source`
//! (the caller passes the mark, so the store need not know the format).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Tokens and cost of an execution's stored steps.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepSums {
    pub execution_id: Uuid,
    pub tokens: i64,
    pub cost_usd: f64,
}

/// The stored steps of each of `executions`, less the `(execution, step)` pairs in `except`.
pub async fn step_sums(
    pool: &PgPool,
    executions: &[Uuid],
    except: &[(Uuid, String)],
) -> Result<Vec<StepSums>, sqlx::Error> {
    let (except_ids, except_steps): (Vec<Uuid>, Vec<&str>) =
        except.iter().map(|(id, step)| (*id, step.as_str())).unzip();
    sqlx::query_as(
        "SELECT s.execution_id, COALESCE(sum(s.total_tokens), 0)::int8 AS tokens,
                COALESCE(sum(s.cost_usd), 0)::float8 AS cost_usd
         FROM step_executions s
         WHERE s.execution_id = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM UNNEST($2::uuid[], $3::text[]) AS x(execution_id, step_name)
                           WHERE x.execution_id = s.execution_id AND x.step_name = s.step_name)
         GROUP BY s.execution_id",
    )
    .bind(executions)
    .bind(except_ids)
    .bind(except_steps)
    .fetch_all(pool)
    .await
}

/// Ingested executions still running whose `config.source` is `source`.
pub async fn open(pool: &PgPool, source: &str) -> Result<Vec<Uuid>, sqlx::Error> {
    // `status = 'running'` keeps to the small partial index of active runs.
    sqlx::query_scalar(
        "SELECT id FROM pipeline_executions
         WHERE status IN ('pending', 'running', 'paused') AND status = 'running'
           AND source = 'ingest' AND config->>'source' = $1",
    )
    .bind(source)
    .fetch_all(pool)
    .await
}

/// What closing an open trace needs: its steps' totals and when it was last active.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OpenTrace {
    pub execution_id: Uuid,
    pub tokens: i64,
    pub cost_usd: f64,
    pub started_at: DateTime<Utc>,
    /// The end of its latest step (its start, for a step still open); None without steps.
    pub last_active: Option<DateTime<Utc>>,
}

/// Those of `ids` still running with `config.source` = `source`, with their steps' totals.
pub async fn still_open(
    pool: &PgPool,
    ids: &[Uuid],
    source: &str,
) -> Result<Vec<OpenTrace>, sqlx::Error> {
    sqlx::query_as(
        "SELECT x.id AS execution_id, COALESCE(sum(s.total_tokens), 0)::int8 AS tokens,
                COALESCE(sum(s.cost_usd), 0)::float8 AS cost_usd, x.started_at,
                max(COALESCE(s.completed_at, s.started_at)) AS last_active
         FROM pipeline_executions x
         LEFT JOIN step_executions s ON s.execution_id = x.id
         WHERE x.id = ANY($1) AND x.status = 'running' AND x.source = 'ingest'
           AND x.config->>'source' = $2
         GROUP BY x.id, x.started_at",
    )
    .bind(ids)
    .bind(source)
    .fetch_all(pool)
    .await
}
