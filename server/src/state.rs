//! What every request handler can reach, and the [`Backend`] the UI's server functions call.

use std::{sync::Arc, time::Instant};

use app::{
    backend::Backend,
    error::AppError,
    models::{
        AttemptStatus, BatchFormat, BatchProgress, BatchRows, Check, DatabaseHealth, DatabaseMode,
        EditorSchema, ExecutionDetail, Health, HealthStatus, PipelineListing, PipelineText,
        Preview, ProviderInfo, ProviderTest, RunAction, RunLogLine, SaveOutcome, Snapshot,
    },
};
use axum::extract::FromRef;
use chrono::{DateTime, Utc};
use leptos::config::LeptosOptions;
use serde_json::{Map, Value};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    bus::{claims::IngestClaims, writer::EventWriter, BusLimits, EventBus, LiveSettings},
    db::{executions, queries},
    engine::{
        batch::{BatchError, BatchRequest},
        library, recovery, Engine, EngineConfig, EngineError, StartRequest,
    },
    otlp::idle::OpenTraces,
};

/// Tunables of the live backbone; defaults are the production values.
#[derive(Debug, Clone, Copy)]
pub struct BackboneSettings {
    pub bus: BusLimits,
    pub live: LiveSettings,
    pub flush_every: std::time::Duration,
    pub metrics_snapshot_every: std::time::Duration,
    /// A trace with no new span for this long and no root span is closed (`--otlp-idle-close`).
    pub otlp_idle_close: std::time::Duration,
}

impl Default for BackboneSettings {
    fn default() -> Self {
        Self {
            bus: BusLimits::default(),
            live: LiveSettings::default(),
            flush_every: std::time::Duration::from_millis(100),
            metrics_snapshot_every: std::time::Duration::from_secs(10),
            otlp_idle_close: std::time::Duration::from_secs(300),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub pool: PgPool,
    pub database_mode: DatabaseMode,
    pub bus: EventBus,
    pub live: LiveSettings,
    pub ingest_claims: IngestClaims,
    /// OpenTelemetry traces not closed yet, for idle close.
    pub open_traces: OpenTraces,
    pub engine: Engine,
    /// Holds this instance's liveness lock (see [`recovery`]) for as long as it runs.
    liveness: Arc<tokio::sync::Mutex<Option<sqlx::PgConnection>>>,
    /// Flipped once on shutdown; open event streams end so the server can stop.
    pub shutdown: Arc<watch::Sender<bool>>,
    pub started_at: DateTime<Utc>,
    started: Instant,
}

impl AppState {
    /// Starts the backbone (writer, bus, relay, metrics) and the engine on `pool`, after marking
    /// the runs of instances that stopped as interrupted.
    pub async fn start(
        leptos_options: LeptosOptions,
        pool: PgPool,
        database_mode: DatabaseMode,
        settings: BackboneSettings,
        engine: EngineConfig,
    ) -> Self {
        let instance = Uuid::new_v4();
        let liveness = match recovery::hold_instance_lock(&pool, instance).await {
            Ok(connection) => Some(connection),
            Err(error) => {
                tracing::warn!("cannot take this instance's liveness lock: {error}");
                None
            }
        };
        let interrupted = recovery::recover(&pool, instance)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!("cannot check for interrupted runs: {error}");
                Vec::new()
            });
        let writer = EventWriter::start(pool.clone(), instance, settings.flush_every);
        let bus = EventBus::start(pool.clone(), writer, settings.bus);
        tokio::spawn(crate::bus::relay::run(bus.clone(), pool.clone()));
        crate::metrics::start(bus.clone(), pool.clone(), settings.metrics_snapshot_every).await;
        for run in &interrupted {
            let message = format!(
                "run {} of `{}` was interrupted when pipescope stopped; re-run it with POST /api/executions/{}/rerun",
                run.execution_id, run.pipeline, run.execution_id
            );
            tracing::warn!("{message}");
            bus.publish(app::models::EventBody::LogEntry(app::models::LogEntry {
                level: app::models::LogLevel::Warn,
                message,
                timestamp: Utc::now(),
                context: app::models::LogContext {
                    execution_id: Some(run.execution_id),
                    step: None,
                    ..Default::default()
                },
            }));
        }
        let engine = Engine::new(bus.clone(), pool.clone(), engine);
        let shutdown = Arc::new(watch::channel(false).0);
        let open_traces = OpenTraces::default();
        tokio::spawn(crate::otlp::idle::run(
            bus.clone(),
            pool.clone(),
            open_traces.clone(),
            settings.otlp_idle_close,
            shutdown.subscribe(),
        ));
        Self {
            leptos_options,
            pool,
            database_mode,
            bus,
            live: settings.live,
            ingest_claims: IngestClaims::default(),
            open_traces,
            engine,
            liveness: Arc::new(tokio::sync::Mutex::new(liveness)),
            shutdown,
            started_at: Utc::now(),
            started: Instant::now(),
        }
    }

    /// Ends open event streams and stops the engine's runs, delivers and persists everything
    /// published so far, then marks this instance's unfinished runs as interrupted.
    pub async fn shut_down(&self) {
        self.shutdown.send_replace(true);
        self.engine.shut_down().await;
        self.bus.close().await;
        self.engine.mark_own_interrupted().await;
        self.liveness.lock().await.take();
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

#[async_trait::async_trait]
impl Backend for AppState {
    async fn health(&self) -> Health {
        let ping = queries::ping(&self.pool).await;
        let (database, running_executions) = match ping {
            Ok(ping) => (
                DatabaseHealth {
                    reachable: true,
                    mode: self.database_mode,
                    latency_ms: Some(ping.latency_ms),
                    server_version: Some(ping.server_version),
                    error: None,
                },
                ping.running_executions,
            ),
            Err(error) => (
                DatabaseHealth {
                    reachable: false,
                    mode: self.database_mode,
                    latency_ms: None,
                    server_version: None,
                    error: Some(error.to_string()),
                },
                0,
            ),
        };
        // A database that answers a ping but refuses writes (read-only, disk full) is not
        // healthy: what waits is said where the page and load balancers look.
        let waits = self.bus.writer().waits().current();
        let mut database = database;
        if !waits.is_empty() {
            let said: Vec<String> = waits.iter().map(|w| w.describe()).collect();
            database.error = Some(said.join("; "));
        }
        Health {
            status: if database.reachable && waits.is_empty() {
                HealthStatus::Ok
            } else {
                HealthStatus::Degraded
            },
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at,
            checked_at: Utc::now(),
            uptime_secs: self.started.elapsed().as_secs(),
            database,
            running_executions,
        }
    }

    async fn snapshot(&self) -> Result<Snapshot, AppError> {
        Ok(queries::snapshot(&self.pool).await?)
    }

    async fn execution(&self, id: Uuid) -> Result<ExecutionDetail, AppError> {
        self.execution_detail(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no execution {id}")))
    }

    async fn run_log(&self, id: Uuid) -> Result<Vec<RunLogLine>, AppError> {
        let events = crate::db::events::of_execution(&self.pool, id, 2000).await?;
        Ok(events.iter().filter_map(RunLogLine::of).collect())
    }

    async fn control(&self, id: Uuid, action: RunAction) -> Result<(), AppError> {
        let result = match action {
            RunAction::Pause => self.engine.pause(id),
            RunAction::Resume => self.engine.resume(id),
            RunAction::Cancel => self.engine.cancel(id, None),
        };
        result.map(|_| ()).map_err(app_error)
    }

    async fn pipelines(&self) -> Result<Vec<PipelineListing>, AppError> {
        Ok(library::listing(&self.pool, self.engine.catalog()).await?)
    }

    async fn pipeline(&self, name: &str, version: Option<u32>) -> Result<PipelineText, AppError> {
        library::open(&self.pool, name, version)
            .await?
            .ok_or_else(|| {
                AppError::NotFound(match version {
                    Some(version) => format!("pipeline `{name}` has no version {version}"),
                    None => format!("no pipeline named `{name}` is saved"),
                })
            })
    }

    async fn check(&self, yaml: &str) -> Check {
        let engine = self.engine.clone();
        let text = yaml.to_owned();
        // Validating a large text takes milliseconds of CPU: not on the request threads.
        match tokio::task::spawn_blocking(move || engine.check(&text)).await {
            Ok(check) => check,
            // Only a panic in the validator (a bug) lands here; the text is not at fault.
            Err(error) => {
                tracing::error!("the validator failed: {error}");
                Check {
                    problems: vec![app::models::Problem {
                        line: 1,
                        column: 1,
                        message: "the validator failed on this text (a bug in pipescope; the \
                                  server log has the details)"
                            .to_owned(),
                        suggestion: None,
                    }],
                    name: None,
                    steps: Vec::new(),
                    cycle: Vec::new(),
                    inputs: Vec::new(),
                    env: Vec::new(),
                }
            }
        }
    }

    async fn editor_schema(&self) -> EditorSchema {
        self.engine.editor_schema()
    }

    async fn save(
        &self,
        yaml: &str,
        base: Option<u32>,
        note: &str,
        draft: bool,
    ) -> Result<SaveOutcome, AppError> {
        let edit = library::Edit {
            yaml,
            base,
            note,
            draft,
        };
        let checked = pipeline::check(yaml.as_bytes(), self.engine.catalog());
        library::save_edited(&self.pool, edit, &checked)
            .await
            .map_err(app_error)
    }

    async fn delete(&self, name: &str) -> Result<(), AppError> {
        if library::delete(&self.pool, name).await? {
            Ok(())
        } else {
            Err(AppError::NotFound(format!(
                "no pipeline named `{name}` is saved"
            )))
        }
    }

    async fn run(
        &self,
        name: &str,
        version: u32,
        inputs: Map<String, Value>,
        env: Vec<(String, String)>,
    ) -> Result<Uuid, AppError> {
        let request = StartRequest {
            pipeline: Some(name.to_owned()),
            version: Some(version),
            inputs,
            env: env
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect(),
            ..StartRequest::default()
        };
        let started = self.engine.start(request).await.map_err(app_error)?;
        Ok(started.execution_id)
    }

    async fn preview(
        &self,
        yaml: &str,
        step: &str,
        inputs: Map<String, Value>,
        outputs: Map<String, Value>,
    ) -> Result<Preview, AppError> {
        let engine = self.engine.clone();
        let (yaml, step) = (yaml.to_owned(), step.to_owned());
        // Validating, rendering and counting tokens take CPU: not on the request threads.
        tokio::task::spawn_blocking(move || engine.preview(&yaml, &step, &inputs, &outputs))
            .await
            .map_err(|error| {
                tracing::error!("the preview failed: {error}");
                AppError::Refused(
                    "the preview failed on this text (a bug in pipescope; the server log has \
                     the details)"
                        .to_owned(),
                )
            })?
            .map_err(AppError::Refused)
    }

    async fn run_outputs(&self, id: Uuid) -> Result<Map<String, Value>, AppError> {
        if executions::run_record(&self.pool, id).await?.is_none() {
            return Err(AppError::NotFound(format!("no execution {id}")));
        }
        let outputs = executions::step_outputs(&self.pool, id).await?;
        Ok(outputs
            .into_iter()
            .map(|(step, output)| (step, Value::String(output)))
            .collect())
    }

    async fn providers(&self) -> Vec<ProviderInfo> {
        self.engine.providers()
    }

    async fn test_provider(&self, name: &str) -> Result<ProviderTest, AppError> {
        self.engine
            .test_provider(name)
            .await
            .map_err(AppError::NotFound)
    }

    async fn parse_batch(
        &self,
        yaml: &str,
        text: &str,
        format: BatchFormat,
    ) -> Result<BatchRows, AppError> {
        let engine = self.engine.clone();
        let (yaml, text) = (yaml.to_owned(), text.to_owned());
        // Validating and reading thousands of rows take CPU: not on the request threads.
        tokio::task::spawn_blocking(move || engine.parse_batch(&yaml, &text, format))
            .await
            .map_err(|error| {
                tracing::error!("reading a batch failed: {error}");
                AppError::Refused(
                    "reading the rows failed (a bug in pipescope; the server log has the details)"
                        .to_owned(),
                )
            })?
            .map_err(app_error)
    }

    async fn start_batch(
        &self,
        name: &str,
        version: u32,
        rows: Vec<Map<String, Value>>,
        concurrency: u32,
    ) -> Result<Uuid, AppError> {
        let request = BatchRequest {
            pipeline: Some(name.to_owned()),
            version: Some(version),
            inputs: Some(rows),
            concurrency: Some(concurrency as usize),
            ..BatchRequest::default()
        };
        match self.engine.start_batch(request).await {
            Ok(started) => Ok(started.batch_id),
            Err(BatchError::Engine(error)) => Err(app_error(error)),
            Err(BatchError::Item(item)) => Err(AppError::Refused(format!(
                "row {} would not run: {}",
                item.index + 1,
                item.error
            ))),
        }
    }

    async fn batch_progress(&self, id: Uuid) -> Result<BatchProgress, AppError> {
        let stored = executions::batch_counts(&self.pool, id).await?;
        let mut counts = Vec::with_capacity(stored.len());
        for (status, count) in stored {
            // The table's CHECK constraint allows only these words; another is a schema bug.
            let status = status.parse().map_err(AppError::Database)?;
            let count = count.as_u64().unwrap_or_default();
            counts.push((status, u32::try_from(count).unwrap_or(u32::MAX)));
        }
        Ok(BatchProgress { counts })
    }

    async fn cancel_batch(&self, id: Uuid) -> Result<u32, AppError> {
        let cancelled = self.engine.cancel_batch(id).map_err(app_error)?;
        Ok(u32::try_from(cancelled).unwrap_or(u32::MAX))
    }
}

/// How an engine refusal reads in the UI.
fn app_error(error: EngineError) -> AppError {
    match error {
        EngineError::NotFound(message) => AppError::NotFound(message),
        EngineError::Store(error) => error.into(),
        EngineError::Invalid(diagnostics) => AppError::Refused(match diagnostics.first() {
            Some(first) => format!(
                "the pipeline is not valid on this server ({} problems; the first, at {first})",
                diagnostics.len()
            ),
            None => "the pipeline is not valid on this server".to_owned(),
        }),
        other @ (EngineError::BadRequest(_)
        | EngineError::Conflict(_)
        | EngineError::Busy { .. }) => AppError::Refused(other.to_string()),
    }
}

impl AppState {
    /// One execution as stored, with each step that is streaming right now filled in with its
    /// response so far (chunks are not stored).
    pub async fn execution_detail(&self, id: Uuid) -> Result<Option<ExecutionDetail>, sqlx::Error> {
        let mut detail = crate::db::executions::detail(&self.pool, id).await?;
        for step in detail.iter_mut().flat_map(|d| d.steps.iter_mut()) {
            if step.status != AttemptStatus::Running || step.response.is_some() {
                continue;
            }
            // Only the attempt streaming now: an earlier one may still read `running` until the
            // writer's next flush.
            if let Some(partial) = self
                .bus
                .partial_response(id, &step.step)
                .filter(|p| i64::from(p.attempt) == i64::from(step.attempt))
            {
                step.response = Some(partial.text);
                step.streamed_through = Some(partial.seq);
            }
        }
        Ok(detail)
    }
}

/// The state as the UI's server functions see it.
pub fn shared_backend(state: &AppState) -> app::backend::SharedBackend {
    Arc::new(state.clone())
}
