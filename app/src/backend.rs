//! The seam between the UI's server functions and the server that owns the database, the
//! event bus and the engine. `app` cannot depend on `server` (the dependency runs the other
//! way), so the server implements [`Backend`] and provides it as context for every request.

use std::sync::Arc;

use leptos::prelude::use_context;

use crate::{
    error::AppError,
    models::{Health, Snapshot, StoreSummary},
};

#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Liveness of the server and its database; never fails, an unreachable database is part
    /// of the answer.
    async fn health(&self) -> Health;

    /// Row counts of what the store holds.
    async fn store_summary(&self) -> Result<StoreSummary, AppError>;

    /// The dashboard's state as of one event sequence number.
    async fn snapshot(&self) -> Result<Snapshot, AppError>;
}

/// What the server puts into the Leptos context of each request.
pub type SharedBackend = Arc<dyn Backend>;

/// The backend of the current request.
pub fn backend() -> Result<SharedBackend, AppError> {
    use_context::<SharedBackend>().ok_or(AppError::NotReady)
}
