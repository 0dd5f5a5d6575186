//! Batched persistence of bus events: buffered and written every 100 ms in one transaction of
//! multi-row statements (UNNEST), never row by row; at once when an execution completes, fails or
//! is cancelled, and on shutdown. Each flush ends with one NOTIFY carrying its sequence range, so
//! other instances on the database can relay the batch.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};

use app::models::EventBody;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::bus::{Delivered, PublishError};

/// The NOTIFY channel batches are announced on.
pub const NOTIFY_CHANNEL: &str = "pipescope_events";
const NONE: i64 = i64::MIN;

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

/// A numbered event waiting to be written.
pub struct Record {
    pub event: Arc<Delivered>,
    pub origin: Origin,
    pub client_id: Option<String>,
    pub ack: Option<oneshot::Sender<Result<i64, PublishError>>>,
}

enum Message {
    Write(Record),
    Close(oneshot::Sender<()>),
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct EventWriter {
    tx: mpsc::UnboundedSender<Message>,
    instance: Uuid,
    progress: Arc<Progress>,
}

#[derive(Default)]
struct Progress {
    /// Highest seq written (NONE before the first flush).
    flushed_through: AtomicI64,
    /// Lowest seq in the writer's buffer, not yet written (NONE when the buffer is empty).
    oldest_unflushed: AtomicI64,
}

impl EventWriter {
    /// Starts the writer task for this instance.
    pub fn start(pool: PgPool, instance: Uuid, interval: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let progress = Arc::new(Progress {
            flushed_through: AtomicI64::new(NONE),
            oldest_unflushed: AtomicI64::new(NONE),
        });
        tokio::spawn(run(pool, instance, interval, rx, progress.clone()));
        Self {
            tx,
            instance,
            progress,
        }
    }

    pub fn instance(&self) -> Uuid {
        self.instance
    }

    pub fn write(&self, record: Record) {
        if let Err(mpsc::error::SendError(Message::Write(record))) =
            self.tx.send(Message::Write(record))
        {
            if let Some(ack) = record.ack {
                let _ = ack.send(Err(PublishError::Closed));
            }
        }
    }

    /// Writes what is buffered and stops the task.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.tx.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }

    pub fn flushed_through(&self) -> Option<i64> {
        Some(self.progress.flushed_through.load(Ordering::Acquire)).filter(|&s| s != NONE)
    }

    pub fn oldest_unflushed(&self) -> Option<i64> {
        Some(self.progress.oldest_unflushed.load(Ordering::Acquire)).filter(|&s| s != NONE)
    }
}

async fn run(
    pool: PgPool,
    instance: Uuid,
    interval: Duration,
    mut rx: mpsc::UnboundedReceiver<Message>,
    progress: Arc<Progress>,
) {
    let mut buffer: Vec<Record> = Vec::new();
    let mut attempts = Attempts::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Write(record)) => {
                    let is_final = record.event.body.is_final();
                    // Set by the task that flushes, so it is never cleared for a record the
                    // flush did not contain. Records still in the channel are the newest events,
                    // always inside the replay window, so they need no tracking.
                    if buffer.is_empty() {
                        progress.oldest_unflushed.store(record.event.seq, Ordering::Release);
                    }
                    buffer.push(record);
                    if is_final {
                        flush(&pool, instance, &mut buffer, &mut attempts, &progress).await;
                    }
                }
                Some(Message::Close(done)) => {
                    flush(&pool, instance, &mut buffer, &mut attempts, &progress).await;
                    let _ = done.send(());
                    return;
                }
                None => {
                    flush(&pool, instance, &mut buffer, &mut attempts, &progress).await;
                    return;
                }
            },
            _ = ticker.tick() => {
                if !buffer.is_empty() {
                    flush(&pool, instance, &mut buffer, &mut attempts, &progress).await;
                }
            }
        }
    }
}

/// Writes the buffer. A lost connection is retried (the events stay buffered, in order); a
/// batch the database rejects is reported to its publishers and logged, never retried forever.
async fn flush(
    pool: &PgPool,
    instance: Uuid,
    buffer: &mut Vec<Record>,
    attempts: &mut Attempts,
    progress: &Progress,
) {
    if buffer.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(50);
    let outcome = loop {
        match write_batch(pool, instance, buffer, attempts).await {
            Ok(()) => break Ok(()),
            Err(error) if is_transient(&error) => {
                tracing::warn!("cannot write events ({error}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(error) => {
                tracing::error!(
                    "dropping a batch of {} events the database rejected: {error}",
                    buffer.len()
                );
                break Err(PublishError::NotPersisted(error.to_string()));
            }
        }
    };
    let last = buffer.last().map(|r| r.event.seq).unwrap_or(NONE);
    progress.flushed_through.fetch_max(last, Ordering::AcqRel);
    progress.oldest_unflushed.store(NONE, Ordering::Release);
    for record in buffer.drain(..) {
        if let Some(ack) = record.ack {
            let _ = ack.send(outcome.clone().map(|()| record.event.seq));
        }
    }
}

/// Errors that go away when the database comes back (connection lost, server restarting).
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// The attempt each running step is on, so that a step's later events update its latest row
/// even when a retry starts in the same batch. Unknown steps (events of an execution started
/// before a restart) fall back to the highest attempt in the store.
#[derive(Default)]
struct Attempts(HashMap<(Uuid, String), i32>);

async fn write_batch(
    pool: &PgPool,
    instance: Uuid,
    records: &[Record],
    attempts: &mut Attempts,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    insert_events(&mut tx, instance, records).await?;

    let mut projection = Projection::default();
    for record in records {
        projection.apply(record, instance, attempts);
    }
    projection.write(&mut tx).await?;

    let first = records.first().map(|r| r.event.seq).unwrap_or_default();
    let last = records.last().map(|r| r.event.seq).unwrap_or_default();
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(format!(
            r#"{{"origin":"{instance}","from":{first},"to":{last}}}"#
        ))
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    instance: Uuid,
    records: &[Record],
) -> Result<(), sqlx::Error> {
    let n = records.len();
    let (mut seqs, mut names, mut executions, mut steps, mut ats, mut client_ids, mut payloads) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for record in records {
        let event = &record.event;
        let scope = event.body.scope();
        seqs.push(event.seq);
        names.push(event.name());
        executions.push(scope.execution_id);
        steps.push(scope.step.map(str::to_owned));
        ats.push(event.at);
        client_ids.push(record.client_id.clone());
        payloads.push(serde_json::to_value(&event.body).unwrap_or(Value::Null));
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
    status: Option<&'static str>,
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
    status: Option<&'static str>,
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
    fn apply(&mut self, record: &Record, instance: Uuid, attempts: &mut Attempts) {
        let at = record.event.at;
        match &record.event.body {
            EventBody::PipelineStarted(e) => self.new_executions.push(NewExecution {
                id: e.execution_id,
                pipeline: e.pipeline.clone(),
                version: e.version.map(clamp_i32),
                batch_id: e.batch_id,
                instance: (record.origin == Origin::Engine).then_some(instance),
                source: record.origin.as_str(),
                config: e.config.clone(),
                inputs: e.inputs.clone(),
                started_at: e.started_at,
            }),
            EventBody::PipelinePaused(e) => self.execution(e.execution_id).status = Some("paused"),
            EventBody::PipelineResumed(e) => {
                self.execution(e.execution_id).status = Some("running")
            }
            EventBody::PipelineCancelled(e) => {
                let patch = self.execution(e.execution_id);
                patch.status = Some("cancelled");
                patch.error = e.reason.clone();
                patch.completed_at = Some(e.at);
            }
            EventBody::PipelineCompleted(e) => {
                let patch = self.execution(e.execution_id);
                patch.status = Some("completed");
                patch.results = Some(e.results.clone());
                patch.total_tokens = Some(e.totals.tokens.try_into().unwrap_or(i64::MAX));
                patch.cost_usd = Some(e.totals.cost_usd);
                patch.duration_ms = Some(e.totals.duration_ms.try_into().unwrap_or(i64::MAX));
                patch.completed_at = Some(at);
            }
            EventBody::PipelineError(e) => {
                let patch = self.execution(e.execution_id);
                patch.status = Some("failed");
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
                patch.status = Some(e.status.as_str());
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
        if record.event.body.is_final() {
            if let Some(id) = record.event.body.scope().execution_id {
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
            .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
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
            .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
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
