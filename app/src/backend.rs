//! The seam between the UI's server functions and the server that owns the database, the
//! event bus and the engine. `app` cannot depend on `server` (the dependency runs the other
//! way), so the server implements [`Backend`] and provides it as context for every request.

use std::sync::Arc;

use leptos::prelude::use_context;

use uuid::Uuid;

use crate::{
    error::AppError,
    models::{ExecutionDetail, Health, RunAction, RunLogLine, Snapshot},
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
}

/// What the server puts into the Leptos context of each request.
pub type SharedBackend = Arc<dyn Backend>;

/// The backend of the current request.
pub fn backend() -> Result<SharedBackend, AppError> {
    use_context::<SharedBackend>().ok_or(AppError::NotReady)
}
