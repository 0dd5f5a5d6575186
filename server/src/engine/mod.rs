//! The pipeline engine: runs validated pipelines step by step on the configured providers and
//! reports everything it does as taxonomy events on the bus, which also persists them. It keeps
//! no state of its own in Postgres; what a run did is what its events say.
//!
//! - [`library`]: pipeline definitions, versioned in Postgres, loaded from `pipelines/`.
//! - `run`: one execution — schedules steps by their dependencies, honours pause and cancel.
//! - `step`: one step — renders, counts, calls the provider, streams, retries, enforces limits.
//! - [`batch`]: one pipeline over many input sets with a concurrency limit.
//! - [`recovery`]: runs left behind by a stopped instance are marked interrupted.
//! - `studio`: the pipeline studio's checks, the editor's schema, prompt previews, and the
//!   providers page (each instance's connection, a test request).
//! - [`demo`]: a steady stream of example runs on the simulated provider.

pub mod batch;
pub mod calls;
pub mod demo;
pub mod library;
pub mod recovery;
mod replay;
pub use replay::{ReplayRequest, Replayed};
mod run;
mod step;
mod studio;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use app::models::{EventBody, LogContext, LogEntry, LogLevel};
use chrono::Utc;
use pipeline::{Catalog, Diagnostic};
use providers::{PriceTable, ProviderKind, Registry, Usage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::PgPool;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

use crate::bus::EventBus;
pub use library::{Definition, PipelineRef};

/// What the engine needs from the server's configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub providers: Registry,
    pub prices: PriceTable,
    /// Most runs executing at once (`--max-running`).
    pub max_running: usize,
}

/// The flag's default.
pub const MAX_RUNNING: usize = 500;

/// Handle to the engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    bus: EventBus,
    pool: PgPool,
    providers: Registry,
    prices: PriceTable,
    catalog: Catalog,
    /// Requests sent to each provider and their errors (`/metrics`).
    calls: calls::ProviderCalls,
    runs: Mutex<HashMap<Uuid, Arc<RunControl>>>,
    /// A place per run that may execute at once; a run holds one until its task ends.
    run_places: Arc<Semaphore>,
    max_running: usize,
    /// Batches still starting runs; cancelling one stops its queue.
    batches: Mutex<HashMap<Uuid, CancellationToken>>,
    /// Every run and batch task, so shutdown can wait for them.
    tasks: TaskTracker,
    /// Cancelled on shutdown: runs stop without reporting themselves cancelled, and are marked
    /// interrupted instead.
    stopping: CancellationToken,
}

/// What a run holds while it executes: its place among the runs executing at once, and its
/// batch's, if it is in one.
/// Held, never read: dropping them gives the places back.
struct Places {
    _run: OwnedSemaphorePermit,
    _batch: Option<OwnedSemaphorePermit>,
}

/// Pause and cancel for one live run.
struct RunControl {
    pipeline: String,
    paused: watch::Sender<bool>,
    cancel: CancellationToken,
    cancel_reason: Mutex<Option<String>>,
    batch_id: Option<Uuid>,
    /// Set when the run publishes its final event; `finished` flips once that is stored.
    finishing: std::sync::atomic::AtomicBool,
    finished: watch::Sender<bool>,
}

/// How to start a run.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"pipeline": "research-brief", "inputs": {"topic": "CRDTs"}}))]
pub struct StartRequest {
    /// A saved pipeline's name (latest version unless `version` is given).
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub version: Option<u32>,
    /// Or the YAML itself: the saved version with this text runs; a new pipeline is saved as
    /// its first version; a changed text of a saved pipeline needs `save`.
    #[serde(default)]
    pub yaml: Option<String>,
    /// Save `yaml` as the pipeline's next version when it differs from every saved one.
    #[serde(default)]
    pub save: bool,
    /// Values for the pipeline's inputs, by name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// Values for the pipeline's declared `env`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub env: Map<String, Value>,
    /// Run every step on this provider / model instead of the pipeline's.
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

/// A run that was accepted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Started {
    pub execution_id: Uuid,
    pub pipeline: String,
    pub version: u32,
}

/// Why the engine refused a request; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    #[error("the pipeline is not valid ({} problems)", .0.len())]
    Invalid(Vec<Diagnostic>),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "{limit} runs are executing, the most this server runs at once (--max-running / \
         PIPESCOPE_MAX_RUNNING); try again when some have finished"
    )]
    Busy { limit: usize },
    #[error("the database is unavailable: {0}")]
    Store(#[from] sqlx::Error),
}

/// The state of a live run as its controls see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Paused,
    Cancelling,
}

impl Engine {
    pub fn new(bus: EventBus, pool: PgPool, config: EngineConfig) -> Self {
        let catalog = Catalog {
            providers: config.providers.names(),
        };
        Self {
            inner: Arc::new(Inner {
                bus,
                pool,
                calls: calls::ProviderCalls::new(config.providers.names()),
                providers: config.providers,
                prices: config.prices,
                catalog,
                runs: Mutex::default(),
                run_places: Arc::new(Semaphore::new(config.max_running.max(1))),
                max_running: config.max_running.max(1),
                batches: Mutex::default(),
                tasks: TaskTracker::new(),
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// The provider names pipelines may use here (what the validator checks against).
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The price table steps are costed by (also the cost of a traced model call).
    pub fn prices(&self) -> &PriceTable {
        &self.inner.prices
    }

    /// Checks a pipeline file against this server's providers.
    pub fn validate(&self, yaml: &[u8]) -> Result<pipeline::Pipeline, Vec<Diagnostic>> {
        pipeline::validate(yaml, &self.inner.catalog)
    }

    /// Starts a run and returns at once; the run reports itself through events.
    pub async fn start(&self, request: StartRequest) -> Result<Started, EngineError> {
        self.start_in_batch(request, None).await
    }

    async fn start_in_batch(
        &self,
        request: StartRequest,
        batch_id: Option<Uuid>,
    ) -> Result<Started, EngineError> {
        let definition = self.resolve(&request).await?;
        let prepared = self.prepare(&definition, &request)?;
        let place = self
            .inner
            .run_places
            .clone()
            .try_acquire_owned()
            .map_err(|_| EngineError::Busy {
                limit: self.inner.max_running,
            })?;
        let (stored, is_stored) = tokio::sync::oneshot::channel();
        let started = self.launch(
            definition,
            prepared,
            batch_id,
            Uuid::new_v4(),
            Some(stored),
            Places {
                _run: place,
                _batch: None,
            },
        );
        // Answer once the run is in the store, so reading it right away finds it.
        let _ = is_stored.await;
        Ok(started)
    }

    /// Finds or saves the definition a request names.
    async fn resolve(&self, request: &StartRequest) -> Result<Arc<Definition>, EngineError> {
        let reference = match (&request.pipeline, &request.yaml) {
            (Some(_), Some(_)) => {
                return Err(EngineError::BadRequest(
                    "give either `pipeline` (a saved pipeline's name) or `yaml`, not both".into(),
                ))
            }
            (Some(name), None) => PipelineRef::Named {
                name: name.clone(),
                version: request.version,
            },
            (None, Some(yaml)) => PipelineRef::Yaml {
                yaml: yaml.clone(),
                save: request.save,
            },
            (None, None) => {
                return Err(EngineError::BadRequest(
                    "name the pipeline to run: `pipeline` (a saved pipeline's name) or `yaml`"
                        .into(),
                ))
            }
        };
        library::resolve(&self.inner.pool, &reference, &self.inner.catalog)
            .await
            .map(Arc::new)
    }

    /// Checks inputs, env and overrides against the pipeline, before anything is published.
    fn prepare(
        &self,
        definition: &Definition,
        request: &StartRequest,
    ) -> Result<run::Prepared, EngineError> {
        run::Prepared::new(
            &definition.pipeline,
            &request.inputs,
            &request.env,
            request.provider.as_deref(),
            request.model.as_deref(),
            &self.inner.providers,
        )
        .map_err(EngineError::BadRequest)
    }

    fn launch(
        &self,
        definition: Arc<Definition>,
        prepared: run::Prepared,
        batch_id: Option<Uuid>,
        execution_id: Uuid,
        stored: Option<tokio::sync::oneshot::Sender<()>>,
        // Freed when the run ends.
        places: Places,
    ) -> Started {
        let control = self.register(&definition, batch_id, execution_id);
        let started = Started {
            execution_id,
            pipeline: definition.name.clone(),
            version: definition.version,
        };
        let engine = self.clone();
        self.inner.tasks.spawn(async move {
            run::execute(
                &engine,
                execution_id,
                definition,
                prepared,
                &control,
                stored,
            )
            .await;
            // The places first: whoever sees the run gone may start another at once.
            drop(places);
            engine.end(execution_id, &control);
        });
        started
    }

    /// Forgets a run whose task has ended; anyone waiting for it to finish goes on.
    fn end(&self, execution_id: Uuid, control: &RunControl) {
        self.runs().remove(&execution_id);
        control.finished.send_replace(true);
    }

    /// For actions on finished runs: a run that is just writing its final event is waited for
    /// (so "replay" clicked the moment a run completes works); one still running is refused.
    async fn finished(&self, execution_id: Uuid, refusal: &str) -> Result<(), EngineError> {
        let Some(control) = self.runs().get(&execution_id).cloned() else {
            return Ok(());
        };
        if !control.finishing.load(std::sync::atomic::Ordering::Acquire) {
            return Err(EngineError::Conflict(refusal.to_owned()));
        }
        let mut finished = control.finished.subscribe();
        let waited = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            finished.wait_for(|done| *done),
        )
        .await;
        match waited {
            Ok(_) => Ok(()),
            Err(_) => Err(EngineError::Conflict(
                "the run is still writing its results; try again in a moment".into(),
            )),
        }
    }

    /// Makes a run controllable before its task starts, so a pause or cancel right after the
    /// start request is never lost.
    fn register(
        &self,
        definition: &Definition,
        batch_id: Option<Uuid>,
        execution_id: Uuid,
    ) -> Arc<RunControl> {
        let control = Arc::new(RunControl {
            pipeline: definition.name.clone(),
            paused: watch::channel(false).0,
            cancel: CancellationToken::new(),
            cancel_reason: Mutex::default(),
            batch_id,
            finishing: Default::default(),
            finished: watch::channel(false).0,
        });
        self.runs().insert(execution_id, control.clone());
        control
    }

    fn batches(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, CancellationToken>> {
        self.inner
            .batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs executing on this server now.
    pub fn running(&self) -> usize {
        self.runs().len()
    }

    /// Requests sent to each provider so far, and how many failed.
    pub fn provider_calls(&self) -> Vec<(String, calls::CallCounts)> {
        self.inner.calls.counts()
    }

    /// Runs this instance executes at once (`--max-running`).
    pub fn max_running(&self) -> usize {
        self.inner.max_running
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<RunControl>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
        self.inner
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn control(&self, execution_id: Uuid) -> Result<Arc<RunControl>, EngineError> {
        self.runs().get(&execution_id).cloned().ok_or_else(|| {
            EngineError::Conflict(format!(
                "execution {execution_id} is not running on this server (it finished, was \
                 interrupted, or runs on another instance)"
            ))
        })
    }

    /// Whether `execution_id` is a run of this engine that has not ended (stored or not yet).
    pub fn is_running_here(&self, execution_id: Uuid) -> bool {
        self.runs().contains_key(&execution_id)
    }

    /// Live runs on this instance and their state.
    pub fn live_runs(&self) -> Vec<(Uuid, String, RunState)> {
        self.runs()
            .iter()
            .map(|(id, control)| (*id, control.pipeline.clone(), control.state()))
            .collect()
    }

    /// Stops starting new steps; the steps already running finish.
    pub fn pause(&self, execution_id: Uuid) -> Result<RunState, EngineError> {
        let control = self.control(execution_id)?;
        if control.cancel.is_cancelled() {
            return Err(EngineError::Conflict("the run is being cancelled".into()));
        }
        if !control.paused.send_replace(true) {
            self.inner
                .bus
                .publish(EventBody::PipelinePaused(app::models::RunTransition {
                    execution_id,
                    at: Utc::now(),
                    reason: Some("paused by a user; running steps finish first".into()),
                }));
        }
        Ok(RunState::Paused)
    }

    pub fn resume(&self, execution_id: Uuid) -> Result<RunState, EngineError> {
        let control = self.control(execution_id)?;
        if control.cancel.is_cancelled() {
            return Err(EngineError::Conflict("the run is being cancelled".into()));
        }
        if control.paused.send_replace(false) {
            self.inner
                .bus
                .publish(EventBody::PipelineResumed(app::models::RunTransition {
                    execution_id,
                    at: Utc::now(),
                    reason: None,
                }));
        }
        Ok(RunState::Running)
    }

    /// Aborts in-flight provider streams at once and ends the run as cancelled.
    pub fn cancel(
        &self,
        execution_id: Uuid,
        reason: Option<String>,
    ) -> Result<RunState, EngineError> {
        let control = self.control(execution_id)?;
        control.request_cancel(reason.unwrap_or_else(|| "cancelled by a user".into()));
        Ok(RunState::Cancelling)
    }

    /// Stops every run without reporting it cancelled (it is marked interrupted, and can be
    /// re-run), waits for the tasks to end, then marks this instance's unfinished runs.
    pub async fn shut_down(&self) {
        self.inner.stopping.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    /// After the bus has flushed: this instance's runs that were still going are interrupted.
    pub async fn mark_own_interrupted(&self) {
        if let Err(error) =
            recovery::mark_interrupted(&self.inner.pool, &[self.inner.bus.instance()]).await
        {
            tracing::warn!("could not mark unfinished runs as interrupted: {error}");
        }
    }

    fn publish(&self, mut body: EventBody) {
        // Text from outside (a provider's error body, a message quoting it) may hold a NUL,
        // which the store cannot hold; model output is cleaned where it streams in (step.rs).
        let text: Option<&mut String> = match &mut body {
            EventBody::StepCompleted(e) => e.error.as_mut(),
            EventBody::PipelineError(e) => Some(&mut e.error),
            EventBody::PipelineCancelled(e) => e.reason.as_mut(),
            EventBody::LogEntry(e) => Some(&mut e.message),
            _ => None,
        };
        if let Some(text) = text {
            replace_nul(text);
        }
        self.inner.bus.publish(body);
    }

    fn log(&self, level: LogLevel, message: String, execution_id: Uuid, step: Option<&str>) {
        self.publish(EventBody::LogEntry(LogEntry {
            level,
            message,
            timestamp: Utc::now(),
            context: LogContext {
                execution_id: Some(execution_id),
                step: step.map(str::to_owned),
                ..Default::default()
            },
        }));
    }

    /// USD for `usage`. The simulated provider is priced like the real model it stands in for
    /// (a demo run of `claude-sonnet-4-5` costs what the real one would).
    fn cost(&self, instance: &str, model: &str, usage: Usage) -> f64 {
        self.known_cost(instance, model, usage).unwrap_or(0.0)
    }

    /// [`Self::cost`], or None when no price applies (an unknown provider or model).
    fn known_cost(&self, instance: &str, model: &str, usage: Usage) -> Option<f64> {
        let prices = &self.inner.prices;
        let kind = self.inner.providers.kind(instance)?;
        let cost = prices.known_cost(instance, kind, model, usage);
        if cost.unwrap_or(0.0) == 0.0 && kind == ProviderKind::Simulated {
            for real in [
                ProviderKind::Openai,
                ProviderKind::Anthropic,
                ProviderKind::Gemini,
            ] {
                if let Some(cost) = prices.known_cost("", real, model, usage) {
                    if cost > 0.0 {
                        return Some(cost);
                    }
                }
            }
        }
        cost
    }
}

impl RunControl {
    fn state(&self) -> RunState {
        if self.cancel.is_cancelled() {
            RunState::Cancelling
        } else if *self.paused.borrow() {
            RunState::Paused
        } else {
            RunState::Running
        }
    }

    fn request_cancel(&self, reason: String) {
        let mut slot = self
            .cancel_reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(reason);
        self.cancel.cancel();
    }

    fn reason(&self) -> Option<String> {
        self.cancel_reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// "unknown provider `x`; this server has: a, b".
fn unknown_provider(name: &str, providers: &Registry) -> String {
    format!(
        "unknown provider `{name}`; this server has: {}",
        providers.names().join(", ")
    )
}

/// Replaces each NUL character (which PostgreSQL's text and jsonb cannot store) with U+FFFD, the
/// replacement character; says whether there was any.
pub(crate) fn replace_nul(text: &mut String) -> bool {
    if !text.contains('\0') {
        return false;
    }
    *text = text.replace('\0', "\u{FFFD}");
    true
}
