//! Reads of executions and their steps: what the run API answers with, and the records of a
//! finished run that re-runs and replays start from (`engine::replay`).

use std::collections::HashMap;

use serde_json::{Map, Value};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use app::models::{AttemptStatus, ExecutionDetail, RunStatus};

use super::projection::Origin;

/// What a re-run or replay needs from a past run.
#[derive(Debug, Clone, FromRow)]
pub struct RunRecord {
    pub id: Uuid,
    pub pipeline_name: String,
    pub pipeline_version: Option<i32>,
    #[sqlx(try_from = "String")]
    pub source: Origin,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    pub inputs: Value,
    pub config: Value,
}

pub async fn run_record(pool: &PgPool, id: Uuid) -> Result<Option<RunRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, pipeline_name, pipeline_version, source, status, inputs, config
         FROM pipeline_executions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct AttemptRow {
    pub attempt: i32,
    #[sqlx(try_from = "String")]
    pub status: AttemptStatus,
}

impl AttemptRow {
    pub fn number(&self) -> u32 {
        u32::try_from(self.attempt).unwrap_or(1)
    }
}

pub async fn step_attempts(
    pool: &PgPool,
    execution_id: Uuid,
    step: &str,
) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT attempt, status FROM step_executions WHERE execution_id = $1 AND step_name = $2",
    )
    .bind(execution_id)
    .bind(step)
    .fetch_all(pool)
    .await
}

/// The output of each step's latest completed attempt.
pub async fn step_outputs(
    pool: &PgPool,
    execution_id: Uuid,
) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT ON (step_name) step_name, response FROM step_executions
         WHERE execution_id = $1 AND status = 'completed' AND response IS NOT NULL
         ORDER BY step_name, attempt DESC",
    )
    .bind(execution_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

pub async fn detail(pool: &PgPool, id: Uuid) -> Result<Option<ExecutionDetail>, sqlx::Error> {
    let Some(mut execution): Option<ExecutionDetail> = sqlx::query_as(
        "SELECT id, pipeline_name, pipeline_version, status, source, batch_id, inputs, config,
                results, error, total_tokens, cost_usd::float8 AS cost_usd, started_at,
                completed_at, duration_ms
         FROM pipeline_executions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    execution.steps = sqlx::query_as(
        "SELECT s.id, s.step_name AS step, s.attempt, o.attempt AS replay_of, s.status, s.provider,
                s.model, s.config, s.system_prompt, s.template, s.variables, s.prompt, s.response,
                s.token_budget, s.prompt_tokens, s.completion_tokens, s.total_tokens,
                s.cost_usd::float8 AS cost_usd, s.ttft_ms, s.duration_ms, s.error, s.started_at,
                s.completed_at
         FROM step_executions s LEFT JOIN step_executions o ON o.id = s.replay_of
         WHERE s.execution_id = $1 ORDER BY s.started_at, s.id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(Some(execution))
}

/// The executions of a batch, by status.
pub async fn batch_counts(
    pool: &PgPool,
    batch_id: Uuid,
) -> Result<Map<String, Value>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM pipeline_executions WHERE batch_id = $1 GROUP BY status",
    )
    .bind(batch_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(status, n)| (status, Value::from(n)))
        .collect())
}
