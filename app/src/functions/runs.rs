use leptos::prelude::*;
use uuid::Uuid;

use crate::{
    error::AppError,
    models::{ExecutionDetail, RunAction},
};

/// One execution with every step attempt, for the step timeline and the prompt inspector.
#[server]
pub async fn get_execution(id: Uuid) -> Result<ExecutionDetail, AppError> {
    crate::backend::backend()?.execution(id).await
}

/// Pause, resume or cancel a run; the change itself arrives as an event.
#[server]
pub async fn control_run(id: Uuid, action: RunAction) -> Result<(), AppError> {
    crate::backend::backend()?.control(id, action).await
}
