//! Events as rows: one batch of numbered events written in one transaction of multi-row
//! statements (UNNEST), never row by row — the `events` log, then the rows of
//! `pipeline_executions`, `step_executions` and `log_entries` the events describe, and one NOTIFY
//! carrying the batch's sequence range so other instances can relay it. When to write (batching,
//! flush timing, acknowledgements, isolating a refused event) is the bus writer's business
//! (`bus::writer`); this module only knows the tables.

use std::collections::HashMap;

use app::models::{events::Resync, AttemptStatus, EventBody, RunStatus};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{types::Json, PgPool, Postgres, Transaction};
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
    /// The whole event as the bus serialised it for the wire (`{"seq":…,"at":…,"event":…,
    /// "data":…}`), when at hand: the event log's copy is cut from it instead of serialising
    /// the event again.
    pub wire: Option<&'a str>,
}

/// The event log's copy of an event, `{"event":…,"data":…}`, cut from its wire form: the bus
/// serialises `seq` and `at` first, then the event (`app::models::Event`). None when `wire` is
/// not of that shape.
fn payload_from_wire(wire: &str) -> Option<String> {
    let rest = wire.strip_prefix("{\"seq\":")?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    // A timestamp in RFC 3339 holds no quote, so the next quote closes it.
    let rest = rest.strip_prefix(",\"at\":\"")?;
    let body = &rest[rest.find('"')? + 1..];
    let body = body.strip_prefix(',')?;
    body.starts_with("\"event\":").then(|| format!("{{{body}"))
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
    let mut projection = Projection::default();
    for (index, event) in events.iter().enumerate() {
        projection.apply(index, event, instance, &mut next_attempts);
    }
    let texts_in_steps = projection.texts_in_steps(events.len());

    let first = events.first().map(|e| e.seq).unwrap_or_default();
    let last = events.last().map(|e| e.seq).unwrap_or_default();
    let mut tx = pool.begin().await?;
    insert_events(&mut tx, instance, events, &texts_in_steps).await?;
    projection.write(&mut tx, first).await?;
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
    lock_log_order(&mut tx).await?;
    sqlx::query("INSERT INTO log_entries (level, message, logged_at) VALUES ('error', $1, $2)")
        .bind(message)
        .bind(refused.at)
        .execute(&mut *tx)
        .await?;
    notify(&mut tx, instance, refused.seq, refused.seq).await?;
    tx.commit().await
}

/// The fields of `prompt:sent` and `response:received` whose values the step's row holds, left
/// out of the event log's copy when the row is named (`step_attempt`); `db::events` puts them
/// back on every read.
pub(crate) const PROMPT_FIELDS_IN_STEP: [&str; 3] = ["prompt", "template", "variables"];
pub(crate) const RESPONSE_FIELDS_IN_STEP: [&str; 1] = ["response"];

async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    instance: Uuid,
    events: &[StoredEvent<'_>],
    texts_in_steps: &[Option<i32>],
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
    for (event, &in_step) in events.iter().zip(texts_in_steps) {
        let scope = event.body.scope();
        seqs.push(event.seq);
        names.push(event.body.name());
        executions.push(scope.execution_id);
        steps.push(scope.step);
        ats.push(event.at);
        client_ids.push(event.client_id);
        let whole = || {
            event
                .wire
                .and_then(payload_from_wire)
                .unwrap_or_else(|| serde_json::to_string(event.body).unwrap_or_default())
        };
        payloads.push(match in_step {
            None => whole(),
            Some(_) => {
                let mut payload = serde_json::to_value(event.body).unwrap_or(Value::Null);
                let fields: &[&str] = match event.body {
                    EventBody::PromptSent(_) => &PROMPT_FIELDS_IN_STEP,
                    _ => &RESPONSE_FIELDS_IN_STEP,
                };
                if let Some(data) = payload.get_mut("data").and_then(Value::as_object_mut) {
                    for field in fields {
                        data.remove(*field);
                    }
                }
                payload.to_string()
            }
        });
    }
    sqlx::query(
        "INSERT INTO events (seq, name, execution_id, step_name, at, origin, client_id, payload, step_attempt)
         SELECT seq, name, execution_id, step_name, at, $6, client_id, payload::jsonb, step_attempt
         FROM UNNEST($1::int8[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $7::text[], $8::text[],
                     $9::int4[])
              AS e(seq, name, execution_id, step_name, at, client_id, payload, step_attempt)
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
    .bind(texts_in_steps)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The batch folded into rows: one entry per execution and per step attempt it touches, holding
/// the row's values when the batch creates it and the later events' changes (later events win),
/// so that each row is written once — inserted with its final values, or updated once — and log
/// lines.
#[derive(Default)]
struct Projection<'a> {
    executions: Vec<ExecutionRow<'a>>,
    execution_index: HashMap<Uuid, usize>,
    steps: Vec<StepRow<'a>>,
    step_index: HashMap<(Uuid, &'a str, Option<i32>), usize>,
    logs: Vec<LogRow<'a>>,
}

#[derive(Default)]
struct ExecutionRow<'a> {
    /// Set when the batch holds its `pipeline:started` (the first one, if sent twice).
    new: Option<NewExecution<'a>>,
    patch: ExecutionPatch<'a>,
    /// An event after `pipeline:started` changed it.
    patched: bool,
}

struct NewExecution<'a> {
    pipeline: &'a str,
    version: Option<i32>,
    batch_id: Option<Uuid>,
    /// The instance running it (engine runs only).
    instance: Option<Uuid>,
    source: &'static str,
    config: &'a Value,
    inputs: &'a Value,
    started_at: DateTime<Utc>,
}

#[derive(Default)]
struct ExecutionPatch<'a> {
    id: Uuid,
    status: Option<RunStatus>,
    results: Option<&'a Value>,
    error: Option<&'a str>,
    total_tokens: Option<i64>,
    cost_usd: Option<f64>,
    duration_ms: Option<i64>,
    completed_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct StepRow<'a> {
    /// Set when the batch holds its `step:started` (the first one, if sent twice).
    new: Option<NewStep<'a>>,
    patch: StepPatch<'a>,
    patched: bool,
    /// The batch's last `prompt:sent` and `response:received` of this attempt (indexes into
    /// the batch): their texts end up in the row.
    last_prompt: Option<usize>,
    last_response: Option<usize>,
}

struct NewStep<'a> {
    replay_of: Option<i32>,
    config: &'a Value,
    provider: &'a str,
    model: &'a str,
    token_budget: Option<i32>,
    started_at: DateTime<Utc>,
}

#[derive(Default)]
struct StepPatch<'a> {
    execution_id: Uuid,
    step: &'a str,
    /// None: a step started before a restart; its latest stored attempt.
    attempt: Option<i32>,
    status: Option<AttemptStatus>,
    system_prompt: Option<&'a str>,
    template: Option<&'a str>,
    variables: Option<&'a Value>,
    prompt: Option<&'a str>,
    response: Option<&'a str>,
    prompt_tokens: Option<i32>,
    completion_tokens: Option<i32>,
    total_tokens: Option<i32>,
    cost_usd: Option<f64>,
    ttft_ms: Option<i32>,
    duration_ms: Option<i64>,
    error: Option<&'a str>,
    completed_at: Option<DateTime<Utc>>,
}

struct LogRow<'a> {
    execution_id: Option<Uuid>,
    step: Option<&'a str>,
    level: &'static str,
    message: &'a str,
    logged_at: DateTime<Utc>,
    /// The line's structured context; an empty map is stored as the column's `{}`.
    fields: &'a Map<String, Value>,
}

fn clamp_i32(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

impl<'a> Projection<'a> {
    /// Folds event number `index` of the batch into the rows.
    fn apply(
        &mut self,
        index: usize,
        event: &StoredEvent<'a>,
        instance: Uuid,
        attempts: &mut Attempts,
    ) {
        let at = event.at;
        match event.body {
            EventBody::PipelineStarted(e) => {
                let row = self.execution_row(e.execution_id);
                row.new.get_or_insert_with(|| NewExecution {
                    pipeline: &e.pipeline,
                    version: e.version.map(clamp_i32),
                    batch_id: e.batch_id,
                    instance: (event.origin == Origin::Engine).then_some(instance),
                    source: event.origin.as_str(),
                    config: &e.config,
                    inputs: &e.inputs,
                    started_at: e.started_at,
                });
            }
            EventBody::PipelinePaused(e) => {
                self.execution(e.execution_id).status = Some(RunStatus::Paused)
            }
            EventBody::PipelineResumed(e) => {
                self.execution(e.execution_id).status = Some(RunStatus::Running)
            }
            EventBody::PipelineCancelled(e) => {
                let patch = self.execution(e.execution_id);
                patch.status = Some(RunStatus::Cancelled);
                patch.error = e.reason.as_deref();
                patch.completed_at = Some(e.at);
            }
            EventBody::PipelineCompleted(e) => {
                let patch = self.execution(e.execution_id);
                patch.status = Some(RunStatus::Completed);
                patch.results = Some(&e.results);
                patch.total_tokens = Some(e.totals.tokens.try_into().unwrap_or(i64::MAX));
                patch.cost_usd = Some(e.totals.cost_usd);
                patch.duration_ms = Some(e.totals.duration_ms.try_into().unwrap_or(i64::MAX));
                patch.completed_at = Some(at);
            }
            EventBody::PipelineError(e) => {
                let patch = self.execution(e.execution_id);
                patch.status = Some(RunStatus::Failed);
                patch.error = Some(&e.error);
                patch.completed_at = Some(at);
            }
            EventBody::StepStarted(e) => {
                let attempt = clamp_i32(e.attempt);
                attempts.0.insert((e.execution_id, e.step.clone()), attempt);
                let row = self.step_row(e.execution_id, &e.step, Some(attempt));
                row.new.get_or_insert_with(|| NewStep {
                    replay_of: e.replay_of.map(clamp_i32),
                    config: &e.config,
                    provider: &e.provider,
                    model: &e.model,
                    token_budget: e.token_budget.map(clamp_i32),
                    started_at: at,
                });
            }
            EventBody::PromptSent(e) => {
                let row = self.step(e.execution_id, &e.step, attempts);
                row.last_prompt = Some(index);
                let patch = &mut row.patch;
                patch.prompt = Some(&e.prompt);
                patch.system_prompt = e.system.as_deref();
                patch.template = Some(&e.template);
                patch.variables = Some(&e.variables);
                patch.prompt_tokens = Some(clamp_i32(e.token_count));
            }
            EventBody::ResponseReceived(e) => {
                let row = self.step(e.execution_id, &e.step, attempts);
                row.last_response = Some(index);
                let patch = &mut row.patch;
                patch.response = Some(&e.response);
                patch.prompt_tokens = Some(clamp_i32(e.usage.prompt_tokens));
                patch.completion_tokens = Some(clamp_i32(e.usage.completion_tokens));
                patch.total_tokens = Some(clamp_i32(e.usage.total_tokens));
                patch.ttft_ms = e.ttft_ms.map(clamp_i32);
            }
            EventBody::StepCompleted(e) => {
                let patch = &mut self.step(e.execution_id, &e.step, attempts).patch;
                patch.status = Some(e.status.into());
                patch.duration_ms = Some(e.duration_ms.try_into().unwrap_or(i64::MAX));
                patch.total_tokens = Some(clamp_i32(e.tokens));
                patch.cost_usd = Some(e.cost_usd);
                patch.error = e.error.as_deref();
                patch.completed_at = Some(at);
            }
            EventBody::LogEntry(e) => self.logs.push(LogRow {
                execution_id: e.context.execution_id,
                step: e.context.step.as_deref(),
                level: e.level.as_str(),
                message: &e.message,
                logged_at: e.timestamp,
                fields: &e.context.fields,
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

    fn execution_row(&mut self, id: Uuid) -> &mut ExecutionRow<'a> {
        let index = *self.execution_index.entry(id).or_insert_with(|| {
            self.executions.push(ExecutionRow {
                patch: ExecutionPatch {
                    id,
                    ..Default::default()
                },
                ..Default::default()
            });
            self.executions.len() - 1
        });
        &mut self.executions[index]
    }

    /// The changes to execution `id`, for an event that changes it.
    fn execution(&mut self, id: Uuid) -> &mut ExecutionPatch<'a> {
        let row = self.execution_row(id);
        row.patched = true;
        &mut row.patch
    }

    fn step_row(
        &mut self,
        execution_id: Uuid,
        step: &'a str,
        attempt: Option<i32>,
    ) -> &mut StepRow<'a> {
        let key = (execution_id, step, attempt);
        let index = *self.step_index.entry(key).or_insert_with(|| {
            self.steps.push(StepRow {
                patch: StepPatch {
                    execution_id,
                    step,
                    attempt,
                    ..Default::default()
                },
                ..Default::default()
            });
            self.steps.len() - 1
        });
        &mut self.steps[index]
    }

    /// The row of the attempt `step` is on, for an event that changes it.
    fn step(&mut self, execution_id: Uuid, step: &'a str, attempts: &Attempts) -> &mut StepRow<'a> {
        let attempt = attempts.0.get(&(execution_id, step.to_owned())).copied();
        let row = self.step_row(execution_id, step, attempt);
        row.patched = true;
        row
    }

    /// For each event of the batch (`len` of them), the attempt whose row will hold its texts
    /// once the batch is written: a `prompt:sent` or `response:received` that is its attempt's
    /// last of the batch. The others (an earlier one of the same attempt, or one for a step
    /// whose attempt is unknown after a restart) keep their texts in the event log.
    fn texts_in_steps(&self, len: usize) -> Vec<Option<i32>> {
        let mut in_steps = vec![None; len];
        for row in &self.steps {
            if let Some(attempt) = row.patch.attempt {
                for index in [row.last_prompt, row.last_response].into_iter().flatten() {
                    in_steps[index] = Some(attempt);
                }
            }
        }
        in_steps
    }

    /// One statement per table. Rows this batch starts are inserted with their final values;
    /// the changes to rows already stored (or started twice: the insert skips a row that
    /// exists) are applied by one UPDATE in the same statement, which sees the table as it was
    /// before the statement (the rows it inserts are not visible to it), so no row is written
    /// twice.
    async fn write(
        self,
        tx: &mut Transaction<'_, Postgres>,
        first_seq: i64,
    ) -> Result<(), sqlx::Error> {
        if !self.executions.is_empty() {
            write_executions(tx, &self.executions).await?;
        }
        if !self.steps.is_empty() {
            write_steps(tx, &self.steps, first_seq).await?;
        }
        if !self.logs.is_empty() {
            let rows = &self.logs;
            lock_log_order(tx).await?;
            sqlx::query(
                "INSERT INTO log_entries (execution_id, step_name, level, message, logged_at, context)
                 SELECT e, s, l, m, t, COALESCE(c, '{}')
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                             $6::jsonb[]) AS r(e, s, l, m, t, c)",
            )
            .bind(rows.iter().map(|r| r.execution_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.step).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.level).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.message).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.logged_at).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|r| (!r.fields.is_empty()).then_some(Json(r.fields)))
                    .collect::<Vec<_>>(),
            )
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// The log viewer reads the lines stored after the last one it holds by id (`since`), so ids
/// must be given in the order their transactions commit, also with several instances on one
/// database: a transaction takes this lock before it inserts lines and holds it until it
/// commits, so lines inserted later are committed later. Uncontended with one instance.
async fn lock_log_order(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('pipescope log_entries', 11))")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn write_executions(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[ExecutionRow<'_>],
) -> Result<(), sqlx::Error> {
    fn new<'r, 'a>(r: &'r ExecutionRow<'a>) -> Option<&'r NewExecution<'a>> {
        r.new.as_ref()
    }
    sqlx::query(
        "WITH p AS (
             SELECT * FROM UNNEST($1::bool[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[],
                                  $7::timestamptz[], $8::int4[], $9::uuid[], $10::uuid[], $11::bool[],
                                  $12::text[], $13::jsonb[], $14::text[], $15::int8[], $16::float8[],
                                  $17::int8[], $18::timestamptz[])
                 AS p(is_new, id, name, source, config, inputs, started_at, version, batch_id, instance,
                      patched, status, results, error, total_tokens, cost_usd, duration_ms, completed_at)
         ), inserted AS (
             INSERT INTO pipeline_executions (id, pipeline_name, status, source, config, inputs, started_at,
                                              pipeline_version, batch_id, instance_id, results, error,
                                              total_tokens, cost_usd, duration_ms, completed_at)
             SELECT id, name, COALESCE(status, 'running'), source, config, inputs, started_at, version,
                    batch_id, instance, results, error, COALESCE(total_tokens, 0),
                    COALESCE(cost_usd::numeric, 0), duration_ms, completed_at
             FROM p WHERE is_new
             ON CONFLICT (id) DO NOTHING
             RETURNING 1
         )
         UPDATE pipeline_executions x SET
             status       = COALESCE(p.status, x.status),
             results      = COALESCE(p.results, x.results),
             error        = COALESCE(p.error, x.error),
             total_tokens = COALESCE(p.total_tokens, x.total_tokens),
             cost_usd     = COALESCE(p.cost_usd::numeric, x.cost_usd),
             duration_ms  = COALESCE(p.duration_ms, x.duration_ms),
             completed_at = COALESCE(p.completed_at, x.completed_at),
             updated_at   = now()
         FROM p WHERE x.id = p.id AND p.patched
           -- A row this statement inserted is not there to update (nor needs it); looking for
           -- it is skipped unless the insert skipped a row that existed.
           AND (NOT p.is_new OR (SELECT count(*) FROM inserted) < (SELECT count(*) FROM p WHERE is_new))",
    )
    .bind(rows.iter().map(|r| r.new.is_some()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.patch.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).map(|n| n.pipeline)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).map(|n| n.source)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).map(|n| n.config)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).map(|n| n.inputs)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).map(|n| n.started_at)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).and_then(|n| n.version)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).and_then(|n| n.batch_id)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).and_then(|n| n.instance)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.patched).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.patch.status.map(|s| s.as_str())).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.patch.results).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.patch.error).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.patch.total_tokens).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.patch.cost_usd).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.patch.duration_ms).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.patch.completed_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Besides the rows: when a batch changes the prompt or response of an attempt stored before,
/// the events whose texts the row held get them back first (from the row as it was), so the
/// log never shows a later text for an earlier event. Events of this batch (`seq >=
/// first_seq`) are not touched.
async fn write_steps(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[StepRow<'_>],
    first_seq: i64,
) -> Result<(), sqlx::Error> {
    fn new<'r, 'a>(r: &'r StepRow<'a>) -> Option<&'r NewStep<'a>> {
        r.new.as_ref()
    }
    fn p<'r, 'a>(r: &'r StepRow<'a>) -> &'r StepPatch<'a> {
        &r.patch
    }
    sqlx::query(
        "WITH p AS (
             SELECT * FROM UNNEST($1::bool[], $2::uuid[], $3::text[], $4::int4[], $5::int4[], $6::text[],
                                  $7::text[], $8::int4[], $9::timestamptz[], $10::jsonb[], $11::bool[],
                                  $12::text[], $13::text[], $14::text[], $15::jsonb[], $16::text[],
                                  $17::text[], $18::int4[], $19::int4[], $20::int4[], $21::float8[],
                                  $22::int4[], $23::int8[], $24::text[], $25::timestamptz[])
                 AS p(is_new, execution_id, step, attempt, replay_of, provider, model, token_budget,
                      started_at, config, patched, status, system_prompt, template, variables, prompt,
                      response, prompt_tokens, completion_tokens, total_tokens, cost_usd, ttft_ms,
                      duration_ms, error, completed_at)
         ), new_rows AS (
             -- Ids drawn up front (from the BIGSERIAL's sequence), so that a replay can name an
             -- attempt started in this batch.
             SELECT p.*, nextval('step_executions_id_seq') AS id
             FROM p WHERE p.is_new
         ), inserted AS (
             INSERT INTO step_executions (id, execution_id, step_name, attempt, status, provider, model,
                                          token_budget, started_at, config, replay_of, system_prompt,
                                          template, variables, prompt, response, prompt_tokens,
                                          completion_tokens, total_tokens, cost_usd, ttft_ms, duration_ms,
                                          error, completed_at)
             SELECT n.id, n.execution_id, n.step, n.attempt, COALESCE(n.status, 'running'), n.provider,
                    n.model, n.token_budget, n.started_at,
                    CASE WHEN n.config = 'null'::jsonb THEN '{}'::jsonb ELSE n.config END,
                    CASE WHEN n.replay_of IS NOT NULL THEN COALESCE(
                        (SELECT o.id FROM step_executions o
                          WHERE o.execution_id = n.execution_id AND o.step_name = n.step
                            AND o.attempt = n.replay_of),
                        (SELECT r.id FROM new_rows r
                          WHERE r.execution_id = n.execution_id AND r.step = n.step
                            AND r.attempt = n.replay_of))
                    END,
                    n.system_prompt, n.template, n.variables, n.prompt, n.response, n.prompt_tokens,
                    n.completion_tokens, n.total_tokens, n.cost_usd::numeric, n.ttft_ms, n.duration_ms,
                    n.error, n.completed_at
             FROM new_rows n
             ON CONFLICT (execution_id, step_name, attempt) DO NOTHING
             RETURNING 1
         ), stored AS (
             SELECT s.id, s.execution_id, s.step_name, s.attempt, s.prompt AS old_prompt,
                    s.template AS old_template, s.variables AS old_variables, s.response AS old_response,
                    p.status, p.system_prompt, p.template, p.variables, p.prompt, p.response,
                    p.prompt_tokens, p.completion_tokens, p.total_tokens, p.cost_usd, p.ttft_ms,
                    p.duration_ms, p.error, p.completed_at
             FROM p JOIN step_executions s
               ON s.execution_id = p.execution_id AND s.step_name = p.step
              AND s.attempt = COALESCE(p.attempt, (SELECT max(m.attempt) FROM step_executions m
                                                    WHERE m.execution_id = p.execution_id
                                                      AND m.step_name = p.step))
             WHERE p.patched
               -- As for executions: rows inserted above are only looked for after a conflict.
               AND (NOT p.is_new OR (SELECT count(*) FROM inserted) < (SELECT count(*) FROM new_rows))
         ), restored AS (
             UPDATE events e SET
                 payload = jsonb_set(e.payload, '{data}', e.payload->'data' || CASE e.name
                     WHEN 'prompt:sent' THEN jsonb_build_object(
                         'prompt', COALESCE(o.old_prompt, ''), 'template', COALESCE(o.old_template, ''),
                         'variables', COALESCE(o.old_variables, 'null'::jsonb))
                     ELSE jsonb_build_object('response', COALESCE(o.old_response, '')) END),
                 step_attempt = NULL
             FROM stored o
             WHERE e.execution_id = o.execution_id AND e.step_name = o.step_name
               AND e.step_attempt = o.attempt AND e.seq < $26
               AND (e.name = 'prompt:sent' AND o.prompt IS NOT NULL
                    OR e.name = 'response:received' AND o.response IS NOT NULL)
         )
         UPDATE step_executions s SET
             status            = COALESCE(o.status, s.status),
             system_prompt     = COALESCE(o.system_prompt, s.system_prompt),
             template          = COALESCE(o.template, s.template),
             variables         = COALESCE(o.variables, s.variables),
             prompt            = COALESCE(o.prompt, s.prompt),
             response          = COALESCE(o.response, s.response),
             prompt_tokens     = COALESCE(o.prompt_tokens, s.prompt_tokens),
             completion_tokens = COALESCE(o.completion_tokens, s.completion_tokens),
             total_tokens      = COALESCE(o.total_tokens, s.total_tokens),
             cost_usd          = COALESCE(o.cost_usd::numeric, s.cost_usd),
             ttft_ms           = COALESCE(o.ttft_ms, s.ttft_ms),
             duration_ms       = COALESCE(o.duration_ms, s.duration_ms),
             error             = COALESCE(o.error, s.error),
             completed_at      = COALESCE(o.completed_at, s.completed_at)
         FROM stored o WHERE s.id = o.id",
    )
    .bind(rows.iter().map(|r| r.new.is_some()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).execution_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).step).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).attempt).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).and_then(|n| n.replay_of)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).map(|n| n.provider)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).map(|n| n.model)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).and_then(|n| n.token_budget)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).map(|n| n.started_at)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| new(r).map(|n| n.config)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.patched).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).status.map(|s| s.as_str())).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).system_prompt).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).template).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).variables).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).prompt).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).response).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).prompt_tokens).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).completion_tokens).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).total_tokens).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).cost_usd).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).ttft_ms).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).duration_ms).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).error).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| p(r).completed_at).collect::<Vec<_>>())
    .bind(first_seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::models::{events::Heartbeat, Event};

    #[test]
    fn the_log_copy_is_cut_from_the_wire_form_or_serialised() {
        let event = Event {
            seq: 42,
            at: "2026-12-06T12:00:00.123456Z".parse().expect("time"),
            body: EventBody::BusHeartbeat(Heartbeat { interval_ms: 5 }),
        };
        let wire = serde_json::to_string(&event).expect("json");
        let cut = payload_from_wire(&wire).expect("the bus's shape");
        assert_eq!(cut, serde_json::to_string(&event.body).expect("json"));
        assert_eq!(payload_from_wire(r#"{"event":"x","data":{}}"#), None);
        assert_eq!(payload_from_wire(r#"{"seq":1,"at":"t","data":{}}"#), None);
    }
}
