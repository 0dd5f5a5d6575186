//! Events as rows: one batch of numbered events written in one transaction of multi-row
//! statements (UNNEST), never row by row — the `events` log, then the rows of
//! `pipeline_executions`, `step_executions` and `log_entries` the events describe, and one NOTIFY
//! carrying the batch's sequence range so other instances can relay it. When to write (batching,
//! flush timing, acknowledgements, isolating a refused event) is the bus writer's business
//! (`bus::writer`); this module only knows the tables.

use std::collections::HashMap;

use app::models::{events::Resync, AttemptStatus, EventBody, RunStatus};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The NOTIFY channel batches are announced on.
pub const NOTIFY_CHANNEL: &str = "pipescope_events";

/// Where an event came from; stored as the execution's `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Engine,
    Ingest,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Engine => "engine",
            Origin::Ingest => "ingest",
        }
    }
}

// Rows decode the `source` column through this (`#[sqlx(try_from = "String")]`).
impl TryFrom<String> for Origin {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "engine" => Ok(Origin::Engine),
            "ingest" => Ok(Origin::Ingest),
            other => Err(format!("unknown execution source {other:?}")),
        }
    }
}

/// A numbered event as the store sees it.
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub body: &'a EventBody,
    pub origin: Origin,
    pub client_id: Option<&'a str>,
}

/// The attempt each running step is on, so that a step's later events update its latest row
/// even when a retry starts in the same batch. Unknown steps (events of an execution started
/// before a restart) fall back to the highest attempt in the store. Cloned before a write so
/// that a transaction the database refuses leaves it as it was.
#[derive(Default, Clone)]
pub struct Attempts(HashMap<(Uuid, String), i32>);

/// Writes `events` (in seq order) in one transaction and announces them with one NOTIFY.
/// `attempts` is updated only when the transaction commits.
pub async fn write_batch(
    pool: &PgPool,
    instance: Uuid,
    events: &[StoredEvent<'_>],
    attempts: &mut Attempts,
) -> Result<(), sqlx::Error> {
    let mut next_attempts = attempts.clone();
    let mut tx = pool.begin().await?;
    insert_events(&mut tx, instance, events).await?;

    let mut projection = Projection::default();
    for event in events {
        projection.apply(event, instance, &mut next_attempts);
    }
    projection.write(&mut tx).await?;

    let first = events.first().map(|e| e.seq).unwrap_or_default();
    let last = events.last().map(|e| e.seq).unwrap_or_default();
    notify(&mut tx, instance, first, last).await?;
    tx.commit().await?;
    *attempts = next_attempts;
    Ok(())
}

async fn notify(
    tx: &mut Transaction<'_, Postgres>,
    instance: Uuid,
    first: i64,
    last: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(format!(
            r#"{{"origin":"{instance}","from":{first},"to":{last}}}"#
        ))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An event the database refused for good, recorded in its place: a `bus:resync` under its
/// `seq` (so a client resuming across it from the store reloads instead of silently missing what
/// it was shown live) and an `error` line in the global log naming it and the reason.
pub async fn write_refusal(
    pool: &PgPool,
    instance: Uuid,
    refused: &StoredEvent<'_>,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let scope = refused.body.scope();
    let payload = serde_json::to_value(EventBody::BusResync(Resync {
        reason: format!("event {} could not be stored; reload", refused.seq),
        dropped: None,
    }))
    .unwrap_or(Value::Null);
    let execution = scope
        .execution_id
        .map(|id| format!(" of execution {id}"))
        .unwrap_or_default();
    let message = format!(
        "event {} ({}{execution}) was shown live but could not be stored: {}",
        refused.seq,
        refused.body.name(),
        reason.replace('\0', "\\0"),
    );
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO events (seq, name, execution_id, step_name, at, origin, client_id, payload)
         VALUES ($1, 'bus:resync', NULL, NULL, $2, $3, NULL, $4) ON CONFLICT DO NOTHING",
    )
    .bind(refused.seq)
    .bind(refused.at)
    .bind(instance)
    .bind(payload)
    .execute(&mut *tx)
    .await?;
    // Not tied to the execution: it may be the very row that was refused.
    sqlx::query("INSERT INTO log_entries (level, message, logged_at) VALUES ('error', $1, $2)")
        .bind(message)
        .bind(refused.at)
        .execute(&mut *tx)
        .await?;
    notify(&mut tx, instance, refused.seq, refused.seq).await?;
    tx.commit().await
}

async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    instance: Uuid,
    events: &[StoredEvent<'_>],
) -> Result<(), sqlx::Error> {
    let n = events.len();
    let (mut seqs, mut names, mut executions, mut steps, mut ats, mut client_ids, mut payloads) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for event in events {
        let scope = event.body.scope();
        seqs.push(event.seq);
        names.push(event.body.name());
        executions.push(scope.execution_id);
        steps.push(scope.step);
        ats.push(event.at);
        client_ids.push(event.client_id);
        payloads.push(serde_json::to_value(event.body).unwrap_or(Value::Null));
    }
    sqlx::query(
        "INSERT INTO events (seq, name, execution_id, step_name, at, origin, client_id, payload)
         SELECT seq, name, execution_id, step_name, at, $6, client_id, payload
         FROM UNNEST($1::int8[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $7::text[], $8::jsonb[])
              AS e(seq, name, execution_id, step_name, at, client_id, payload)
         ON CONFLICT DO NOTHING",
    )
    .bind(&seqs)
    .bind(&names)
    .bind(&executions)
    .bind(&steps)
    .bind(&ats)
    .bind(instance)
    .bind(&client_ids)
    .bind(&payloads)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The batch folded into rows: new executions and steps, then one patch per execution and per
/// step attempt (later events win), then log lines.
#[derive(Default)]
struct Projection {
    new_executions: Vec<NewExecution>,
    new_steps: Vec<NewStep>,
    execution_patches: Vec<ExecutionPatch>,
    execution_index: HashMap<Uuid, usize>,
    step_patches: Vec<StepPatch>,
    step_index: HashMap<(Uuid, String, Option<i32>), usize>,
    logs: Vec<LogRow>,
}

struct NewExecution {
    id: Uuid,
    pipeline: String,
    version: Option<i32>,
    batch_id: Option<Uuid>,
    /// The instance running it (engine runs only).
    instance: Option<Uuid>,
    source: &'static str,
    config: Value,
    inputs: Value,
    started_at: DateTime<Utc>,
}

struct NewStep {
    execution_id: Uuid,
    step: String,
    attempt: i32,
    replay_of: Option<i32>,
    config: Value,
    provider: String,
    model: String,
    token_budget: Option<i32>,
    started_at: DateTime<Utc>,
}

#[derive(Default)]
struct ExecutionPatch {
    id: Uuid,
    status: Option<RunStatus>,
    results: Option<Value>,
    error: Option<String>,
    total_tokens: Option<i64>,
    cost_usd: Option<f64>,
    duration_ms: Option<i64>,
    completed_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct StepPatch {
    execution_id: Uuid,
    step: String,
    attempt: Option<i32>,
    status: Option<AttemptStatus>,
    system_prompt: Option<String>,
    template: Option<String>,
    variables: Option<Value>,
    prompt: Option<String>,
    response: Option<String>,
    prompt_tokens: Option<i32>,
    completion_tokens: Option<i32>,
    total_tokens: Option<i32>,
    cost_usd: Option<f64>,
    ttft_ms: Option<i32>,
    duration_ms: Option<i64>,
    error: Option<String>,
    completed_at: Option<DateTime<Utc>>,
}

struct LogRow {
    execution_id: Option<Uuid>,
    step: Option<String>,
    level: &'static str,
    message: String,
    logged_at: DateTime<Utc>,
}

fn clamp_i32(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

impl Projection {
    fn apply(&mut self, event: &StoredEvent<'_>, instance: Uuid, attempts: &mut Attempts) {
        let at = event.at;
        match event.body {
            EventBody::PipelineStarted(e) => self.new_executions.push(NewExecution {
                id: e.execution_id,
                pipeline: e.pipeline.clone(),
                version: e.version.map(clamp_i32),
                batch_id: e.batch_id,
                instance: (event.origin == Origin::Engine).then_some(instance),
                source: event.origin.as_str(),
                config: e.config.clone(),
                inputs: e.inputs.clone(),
                started_at: e.started_at,
            }),
            EventBody::PipelinePaused(e) => {
                self.execution(e.execution_id).status = Some(RunStatus::Paused)
            }
            EventBody::PipelineResumed(e) => {
                self.execution(e.execution_id).status = Some(RunStatus::Running)
            }
            EventBody::PipelineCancelled(e) => {
                let patch = self.execution(e.execution_id);
                patch.status = Some(RunStatus::Cancelled);
                patch.error = e.reason.clone();
                patch.completed_at = Some(e.at);
            }
            EventBody::PipelineCompleted(e) => {
                let patch = self.execution(e.execution_id);
                patch.status = Some(RunStatus::Completed);
                patch.results = Some(e.results.clone());
                patch.total_tokens = Some(e.totals.tokens.try_into().unwrap_or(i64::MAX));
                patch.cost_usd = Some(e.totals.cost_usd);
                patch.duration_ms = Some(e.totals.duration_ms.try_into().unwrap_or(i64::MAX));
                patch.completed_at = Some(at);
            }
            EventBody::PipelineError(e) => {
                let patch = self.execution(e.execution_id);
                patch.status = Some(RunStatus::Failed);
                patch.error = Some(e.error.clone());
                patch.completed_at = Some(at);
            }
            EventBody::StepStarted(e) => {
                let attempt = clamp_i32(e.attempt);
                attempts.0.insert((e.execution_id, e.step.clone()), attempt);
                self.new_steps.push(NewStep {
                    execution_id: e.execution_id,
                    step: e.step.clone(),
                    attempt,
                    replay_of: e.replay_of.map(clamp_i32),
                    config: e.config.clone(),
                    provider: e.provider.clone(),
                    model: e.model.clone(),
                    token_budget: e.token_budget.map(clamp_i32),
                    started_at: at,
                });
            }
            EventBody::PromptSent(e) => {
                let patch = self.step(e.execution_id, &e.step, attempts);
                patch.prompt = Some(e.prompt.clone());
                patch.system_prompt = e.system.clone();
                patch.template = Some(e.template.clone());
                patch.variables = Some(e.variables.clone());
                patch.prompt_tokens = Some(clamp_i32(e.token_count));
            }
            EventBody::ResponseReceived(e) => {
                let patch = self.step(e.execution_id, &e.step, attempts);
                patch.response = Some(e.response.clone());
                patch.prompt_tokens = Some(clamp_i32(e.usage.prompt_tokens));
                patch.completion_tokens = Some(clamp_i32(e.usage.completion_tokens));
                patch.total_tokens = Some(clamp_i32(e.usage.total_tokens));
                patch.ttft_ms = e.ttft_ms.map(clamp_i32);
            }
            EventBody::StepCompleted(e) => {
                let patch = self.step(e.execution_id, &e.step, attempts);
                patch.status = Some(e.status.into());
                patch.duration_ms = Some(e.duration_ms.try_into().unwrap_or(i64::MAX));
                patch.total_tokens = Some(clamp_i32(e.tokens));
                patch.cost_usd = Some(e.cost_usd);
                patch.error = e.error.clone();
                patch.completed_at = Some(at);
            }
            EventBody::LogEntry(e) => self.logs.push(LogRow {
                execution_id: e.context.execution_id,
                step: e.context.step.clone(),
                level: e.level.as_str(),
                message: e.message.clone(),
                logged_at: e.timestamp,
            }),
            EventBody::StepProgress(_)
            | EventBody::ResponseStreaming(_)
            | EventBody::MetricsUpdated(_)
            | EventBody::BusHeartbeat(_)
            | EventBody::BusResync(_) => {}
        }
        if event.body.is_final() {
            if let Some(id) = event.body.scope().execution_id {
                attempts.0.retain(|(execution, _), _| *execution != id);
            }
        }
    }

    fn execution(&mut self, id: Uuid) -> &mut ExecutionPatch {
        let index = *self.execution_index.entry(id).or_insert_with(|| {
            self.execution_patches.push(ExecutionPatch {
                id,
                ..Default::default()
            });
            self.execution_patches.len() - 1
        });
        &mut self.execution_patches[index]
    }

    fn step(&mut self, execution_id: Uuid, step: &str, attempts: &Attempts) -> &mut StepPatch {
        let attempt = attempts.0.get(&(execution_id, step.to_owned())).copied();
        let key = (execution_id, step.to_owned(), attempt);
        let index = *self.step_index.entry(key).or_insert_with(|| {
            self.step_patches.push(StepPatch {
                execution_id,
                step: step.to_owned(),
                attempt,
                ..Default::default()
            });
            self.step_patches.len() - 1
        });
        &mut self.step_patches[index]
    }

    async fn write(self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        if !self.new_executions.is_empty() {
            let rows = &self.new_executions;
            sqlx::query(
                "INSERT INTO pipeline_executions (id, pipeline_name, status, source, config, inputs, started_at,
                                                  pipeline_version, batch_id, instance_id)
                 SELECT id, name, 'running', source, config, inputs, started_at, version, batch_id, instance
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::timestamptz[],
                             $7::int4[], $8::uuid[], $9::uuid[])
                      AS e(id, name, source, config, inputs, started_at, version, batch_id, instance)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.pipeline.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.source).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.config.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.inputs.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.started_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.batch_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.instance).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        }
        if !self.new_steps.is_empty() {
            let rows = &self.new_steps;
            sqlx::query(
                "INSERT INTO step_executions (execution_id, step_name, attempt, status, provider, model, token_budget,
                                              started_at, config, replay_of)
                 SELECT s.execution_id, s.step, s.attempt, 'running', s.provider, s.model, s.token_budget,
                        s.started_at, s.config,
                        (SELECT o.id FROM step_executions o
                          WHERE o.execution_id = s.execution_id AND o.step_name = s.step
                            AND o.attempt = s.replay_of)
                 FROM UNNEST($1::uuid[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::int4[],
                             $7::timestamptz[], $8::jsonb[], $9::int4[])
                      AS s(execution_id, step, attempt, provider, model, token_budget, started_at, config, replay_of)
                 ON CONFLICT (execution_id, step_name, attempt) DO NOTHING",
            )
            .bind(rows.iter().map(|r| r.execution_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.step.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.attempt).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.provider.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.model.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.token_budget).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.started_at).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|r| match &r.config {
                        Value::Null => Value::Object(Default::default()),
                        config => config.clone(),
                    })
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|r| r.replay_of).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        }
        if !self.step_patches.is_empty() {
            let rows = &self.step_patches;
            sqlx::query(
                "UPDATE step_executions s SET
                    status            = COALESCE(p.status, s.status),
                    system_prompt     = COALESCE(p.system_prompt, s.system_prompt),
                    template          = COALESCE(p.template, s.template),
                    variables         = COALESCE(p.variables, s.variables),
                    prompt            = COALESCE(p.prompt, s.prompt),
                    response          = COALESCE(p.response, s.response),
                    prompt_tokens     = COALESCE(p.prompt_tokens, s.prompt_tokens),
                    completion_tokens = COALESCE(p.completion_tokens, s.completion_tokens),
                    total_tokens      = COALESCE(p.total_tokens, s.total_tokens),
                    cost_usd          = COALESCE(p.cost_usd::numeric, s.cost_usd),
                    ttft_ms           = COALESCE(p.ttft_ms, s.ttft_ms),
                    duration_ms       = COALESCE(p.duration_ms, s.duration_ms),
                    error             = COALESCE(p.error, s.error),
                    completed_at      = COALESCE(p.completed_at, s.completed_at)
                 FROM UNNEST($1::uuid[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::text[],
                             $7::jsonb[], $8::text[], $9::text[], $10::int4[], $11::int4[], $12::int4[],
                             $13::float8[], $14::int4[], $15::int8[], $16::text[], $17::timestamptz[])
                      AS p(execution_id, step, attempt, status, system_prompt, template, variables, prompt,
                           response, prompt_tokens, completion_tokens, total_tokens, cost_usd, ttft_ms,
                           duration_ms, error, completed_at)
                 WHERE s.execution_id = p.execution_id AND s.step_name = p.step
                   AND s.attempt = COALESCE(p.attempt, (SELECT max(m.attempt) FROM step_executions m
                                                         WHERE m.execution_id = p.execution_id
                                                           AND m.step_name = p.step))",
            )
            .bind(rows.iter().map(|r| r.execution_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.step.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.attempt).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.status.map(|s| s.as_str())).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.system_prompt.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.template.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.variables.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.prompt.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.response.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.prompt_tokens).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.completion_tokens).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.total_tokens).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.cost_usd).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.ttft_ms).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.duration_ms).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.completed_at).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        }
        if !self.execution_patches.is_empty() {
            let rows = &self.execution_patches;
            sqlx::query(
                "UPDATE pipeline_executions x SET
                    status       = COALESCE(p.status, x.status),
                    results      = COALESCE(p.results, x.results),
                    error        = COALESCE(p.error, x.error),
                    total_tokens = COALESCE(p.total_tokens, x.total_tokens),
                    cost_usd     = COALESCE(p.cost_usd::numeric, x.cost_usd),
                    duration_ms  = COALESCE(p.duration_ms, x.duration_ms),
                    completed_at = COALESCE(p.completed_at, x.completed_at),
                    updated_at   = now()
                 FROM UNNEST($1::uuid[], $2::text[], $3::jsonb[], $4::text[], $5::int8[], $6::float8[],
                             $7::int8[], $8::timestamptz[])
                      AS p(id, status, results, error, total_tokens, cost_usd, duration_ms, completed_at)
                 WHERE x.id = p.id",
            )
            .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.status.map(|s| s.as_str())).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.results.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.total_tokens).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.cost_usd).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.duration_ms).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.completed_at).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        }
        if !self.logs.is_empty() {
            let rows = &self.logs;
            sqlx::query(
                "INSERT INTO log_entries (execution_id, step_name, level, message, logged_at)
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])",
            )
            .bind(rows.iter().map(|r| r.execution_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.step.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.level).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.message.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.logged_at).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}
