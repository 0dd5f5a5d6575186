use leptos::prelude::*;

use super::codec::Json;
use uuid::Uuid;

use crate::{
    error::AppError,
    models::{ExecutionDetail, RunAction, RunLogLine},
};

/// One execution with every step attempt, for the step timeline and the prompt inspector.
#[server(output = Json)]
pub async fn get_execution(id: Uuid) -> Result<ExecutionDetail, AppError> {
    crate::backend::backend()?.execution(id).await
}

/// Pause, resume or cancel a run; the change itself arrives as an event.
#[server(output = Json)]
pub async fn control_run(id: Uuid, action: RunAction) -> Result<(), AppError> {
    crate::backend::backend()?.control(id, action).await
}

/// A run's log: one line per stored event, for the log area.
#[server(output = Json)]
pub async fn get_run_log(id: Uuid) -> Result<Vec<RunLogLine>, AppError> {
    crate::backend::backend()?.run_log(id).await
}
