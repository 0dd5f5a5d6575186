//! The seam between the UI's server functions and the server that owns the database, the
//! event bus and the engine. `app` cannot depend on `server` (the dependency runs the other
//! way), so the server implements [`Backend`] and provides it as context for every request.

use std::sync::Arc;

use leptos::prelude::use_context;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    error::AppError,
    models::{
        BatchFormat, BatchProgress, BatchRows, Check, EditorSchema, ExecutionDetail, Health,
        PipelineListing, PipelineText, Preview, ProviderInfo, ProviderTest, RunAction, RunLogLine,
        SaveOutcome, Snapshot,
    },
};

#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Liveness of the server and its database; never fails, an unreachable database is part
    /// of the answer.
    async fn health(&self) -> Health;

    /// The dashboard's state as of one event sequence number.
    async fn snapshot(&self) -> Result<Snapshot, AppError>;

    /// One execution with every step attempt (prompts, responses, usage).
    async fn execution(&self, id: Uuid) -> Result<ExecutionDetail, AppError>;

    /// What happened to one execution so far: a line per stored event, from its newest 2,000
    /// events.
    async fn run_log(&self, id: Uuid) -> Result<Vec<RunLogLine>, AppError>;

    /// Pause, resume or cancel a live run.
    async fn control(&self, id: Uuid, action: RunAction) -> Result<(), AppError>;

    /// Every saved pipeline: its newest version, last run, and today's runs and cost.
    async fn pipelines(&self) -> Result<Vec<PipelineListing>, AppError>;

    /// One pipeline's text (the newest version, drafts included, unless `version` is given)
    /// and its history; `NotFound` for an unknown name or version.
    async fn pipeline(&self, name: &str, version: Option<u32>) -> Result<PipelineText, AppError>;

    /// The validator's verdict on a text with its outline; never fails: problems are the answer.
    async fn check(&self, yaml: &str) -> Check;

    /// What the editor completes, from the validator's key tables and this server's providers.
    async fn editor_schema(&self) -> EditorSchema;

    /// Stores `yaml` as the next version of the pipeline it names, if `base` is still its newest
    /// version (None: a new name) and, unless `draft`, it has no problems.
    async fn save(
        &self,
        yaml: &str,
        base: Option<u32>,
        note: &str,
        draft: bool,
    ) -> Result<SaveOutcome, AppError>;

    /// Deletes every version of a pipeline; its runs stay.
    async fn delete(&self, name: &str) -> Result<(), AppError>;

    /// Starts a run of a saved, non-draft version; `Refused` (naming it) for an unknown or
    /// missing input or env value.
    async fn run(
        &self,
        name: &str,
        version: u32,
        inputs: Map<String, Value>,
        env: Vec<(String, String)>,
    ) -> Result<Uuid, AppError>;

    /// Step `step` of the text `yaml` rendered as it would be sent, with its token count and
    /// estimated cost; nothing is sent. `inputs` get the declared defaults for what is missing;
    /// `outputs` are the earlier steps' outputs by step name (missing ones render as empty
    /// text). `Refused`, saying what to fix, for an invalid text, an unknown step, a missing
    /// required input or a template that cannot render.
    async fn preview(
        &self,
        yaml: &str,
        step: &str,
        inputs: Map<String, Value>,
        outputs: Map<String, Value>,
    ) -> Result<Preview, AppError>;

    /// The output of each step's latest completed attempt in a stored execution, by step name;
    /// `NotFound` for an unknown execution.
    async fn run_outputs(&self, id: Uuid) -> Result<Map<String, Value>, AppError>;

    /// Every provider instance configured here: kind, base URL, models, whether its key is set
    /// and where it is read from (never the key).
    async fn providers(&self) -> Vec<ProviderInfo>;

    /// A real minimal request to a provider, timed; a failure is part of the answer.
    /// `NotFound` for an unknown name.
    async fn test_provider(&self, name: &str) -> Result<ProviderTest, AppError>;

    /// Batch inputs read as `format` and each row checked against the inputs `yaml` declares
    /// (an unknown input, a missing required one), as a run would check them. `Refused` for an
    /// invalid `yaml`, an unreadable text (a CSV header without input names) or more rows than
    /// a batch may hold.
    async fn parse_batch(
        &self,
        yaml: &str,
        text: &str,
        format: BatchFormat,
    ) -> Result<BatchRows, AppError>;

    /// Starts one run of a saved, non-draft version per input set, `concurrency` at a time;
    /// `Refused` (naming the set) when one would not run.
    async fn start_batch(
        &self,
        name: &str,
        version: u32,
        rows: Vec<Map<String, Value>>,
        concurrency: u32,
    ) -> Result<Uuid, AppError>;

    /// How many of the batch's runs are stored in each status; none right after the start (runs
    /// are stored as they start) or for an id that names no batch.
    async fn batch_progress(&self, id: Uuid) -> Result<BatchProgress, AppError>;

    /// Cancels the batch's running runs; its queued runs never start. How many were running;
    /// `Refused` when nothing of it runs on this server.
    async fn cancel_batch(&self, id: Uuid) -> Result<u32, AppError>;
}

/// What the server puts into the Leptos context of each request.
pub type SharedBackend = Arc<dyn Backend>;

/// The backend of the current request.
pub fn backend() -> Result<SharedBackend, AppError> {
    use_context::<SharedBackend>().ok_or(AppError::NotReady)
}
