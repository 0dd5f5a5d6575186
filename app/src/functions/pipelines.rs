//! The pipeline studio's calls: list, open, check, save, delete and run pipelines.

use leptos::prelude::*;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    error::AppError,
    models::{Check, EditorSchema, PipelineListing, PipelineText, SaveOutcome},
};

/// Every saved pipeline with its newest version, last run and today's runs and cost.
#[server]
pub async fn list_pipelines() -> Result<Vec<PipelineListing>, AppError> {
    crate::backend::backend()?.pipelines().await
}

/// The newest version (drafts included) with its history; `version` picks an older one.
#[server]
pub async fn open_pipeline(name: String, version: Option<u32>) -> Result<PipelineText, AppError> {
    crate::backend::backend()?.pipeline(&name, version).await
}

/// The validator's verdict on a text, with its graph, inputs and env.
#[server]
pub async fn check_pipeline(yaml: String) -> Result<Check, AppError> {
    Ok(crate::backend::backend()?.check(&yaml).await)
}

/// What the editor completes: keys, this server's providers, template filters, the size limit.
// The call's own type would be named `EditorSchema` too, after the function.
#[server(name = GetEditorSchema)]
pub async fn editor_schema() -> Result<EditorSchema, AppError> {
    Ok(crate::backend::backend()?.editor_schema().await)
}

/// `base` = the version the editor opened (None for a new pipeline; a new pipeline whose name is
/// taken is a Conflict). The name is the one in the text. `draft` stores it even with problems.
#[server]
pub async fn save_pipeline(
    yaml: String,
    base: Option<u32>,
    note: String,
    draft: bool,
) -> Result<SaveOutcome, AppError> {
    crate::backend::backend()?
        .save(&yaml, base, &note, draft)
        .await
}

/// Deletes every version; its runs stay readable (executions keep their pipeline name).
#[server]
pub async fn delete_pipeline(name: String) -> Result<(), AppError> {
    crate::backend::backend()?.delete(&name).await
}

/// Starts a run of a saved, non-draft version with these inputs and env overrides; the run's id.
#[server]
pub async fn run_pipeline(
    name: String,
    version: u32,
    inputs: Map<String, Value>,
    env: Vec<(String, String)>,
) -> Result<Uuid, AppError> {
    crate::backend::backend()?
        .run(&name, version, inputs, env)
        .await
}
