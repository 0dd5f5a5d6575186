//! Reads of executions and their steps: what the run API answers with, and what re-runs and
//! replays need from a finished run.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use app::models::{ExecutionDetail, StepDetail};

use crate::engine::{EngineError, StartRequest};

/// What a re-run or replay needs from a past run.
#[derive(Debug, Clone, FromRow)]
pub struct RunRecord {
    pub id: Uuid,
    pub pipeline_name: String,
    pub pipeline_version: Option<i32>,
    pub source: String,
    pub status: String,
    pub inputs: Value,
    pub config: Value,
}

impl RunRecord {
    /// The request that starts this run again (same definition version, inputs, env, overrides).
    pub fn start_request(&self) -> Result<StartRequest, EngineError> {
        if self.source != "engine" {
            return Err(EngineError::Conflict(
                "this run was reported through the ingest API; only runs started by pipescope \
                 can be re-run or replayed"
                    .into(),
            ));
        }
        let text = |key: &str| {
            self.config
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Ok(StartRequest {
            pipeline: Some(self.pipeline_name.clone()),
            version: self.pipeline_version.and_then(|v| u32::try_from(v).ok()),
            yaml: None,
            inputs: self.inputs.as_object().cloned().unwrap_or_default(),
            env: self
                .config
                .get("env")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            provider: text("provider"),
            model: text("model"),
        })
    }
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
    pub status: String,
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

#[derive(FromRow)]
struct StepRow {
    id: i64,
    step: String,
    attempt: i32,
    /// The attempt this one replays.
    replay_of: Option<i32>,
    status: String,
    provider: Option<String>,
    model: Option<String>,
    config: Value,
    system_prompt: Option<String>,
    template: Option<String>,
    variables: Option<Value>,
    prompt: Option<String>,
    response: Option<String>,
    token_budget: Option<i32>,
    prompt_tokens: Option<i32>,
    completion_tokens: Option<i32>,
    total_tokens: Option<i32>,
    cost_usd: Option<f64>,
    ttft_ms: Option<i32>,
    duration_ms: Option<i64>,
    error: Option<String>,
    started_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct ExecutionRow {
    id: Uuid,
    pipeline_name: String,
    pipeline_version: Option<i32>,
    status: String,
    source: String,
    batch_id: Option<Uuid>,
    inputs: Value,
    config: Value,
    results: Option<Value>,
    error: Option<String>,
    total_tokens: i64,
    cost_usd: f64,
    started_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
}

pub async fn detail(pool: &PgPool, id: Uuid) -> Result<Option<ExecutionDetail>, sqlx::Error> {
    let Some(row): Option<ExecutionRow> = sqlx::query_as(
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
    let steps: Vec<StepRow> = sqlx::query_as(
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
    Ok(Some(ExecutionDetail {
        id: row.id,
        pipeline: row.pipeline_name,
        version: row.pipeline_version,
        status: row.status,
        source: row.source,
        batch_id: row.batch_id,
        inputs: row.inputs,
        config: row.config,
        results: row.results,
        error: row.error,
        total_tokens: row.total_tokens,
        cost_usd: row.cost_usd,
        started_at: row.started_at,
        completed_at: row.completed_at,
        duration_ms: row.duration_ms,
        steps: steps.into_iter().map(StepRow::into_detail).collect(),
    }))
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

impl StepRow {
    fn into_detail(self) -> StepDetail {
        StepDetail {
            id: self.id,
            step: self.step,
            attempt: self.attempt,
            replay_of: self.replay_of,
            status: self.status,
            provider: self.provider,
            model: self.model,
            config: self.config,
            system_prompt: self.system_prompt,
            template: self.template,
            variables: self.variables,
            prompt: self.prompt,
            response: self.response,
            streamed_through: None,
            token_budget: self.token_budget,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.total_tokens,
            cost_usd: self.cost_usd,
            ttft_ms: self.ttft_ms,
            duration_ms: self.duration_ms,
            error: self.error,
            started_at: self.started_at,
            completed_at: self.completed_at,
        }
    }
}
