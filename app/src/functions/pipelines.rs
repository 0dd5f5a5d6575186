//! The pipeline studio's calls: list, open, check, save, delete and run pipelines; preview a
//! step's prompt; list and test this server's providers; read, start, follow and cancel a batch.

use leptos::prelude::*;

use super::codec::Json;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    error::AppError,
    models::{
        BatchFormat, BatchProgress, BatchRows, Check, EditorSchema, PipelineListing, PipelineText,
        Preview, ProviderInfo, ProviderTest, SaveOutcome,
    },
};

/// Every saved pipeline with its newest version, last run and today's runs and cost.
#[server(output = Json)]
pub async fn list_pipelines() -> Result<Vec<PipelineListing>, AppError> {
    crate::backend::backend()?.pipelines().await
}

/// The newest version (drafts included) with its history; `version` picks an older one.
#[server(output = Json)]
pub async fn open_pipeline(name: String, version: Option<u32>) -> Result<PipelineText, AppError> {
    crate::backend::backend()?.pipeline(&name, version).await
}

/// The validator's verdict on a text, with its graph, inputs and env.
#[server(output = Json)]
pub async fn check_pipeline(yaml: String) -> Result<Check, AppError> {
    Ok(crate::backend::backend()?.check(&yaml).await)
}

/// What the editor completes: keys, this server's providers, template filters, the size limit.
// The call's own type would be named `EditorSchema` too, after the function.
#[server(output = Json, name = GetEditorSchema)]
pub async fn editor_schema() -> Result<EditorSchema, AppError> {
    Ok(crate::backend::backend()?.editor_schema().await)
}

/// `base` = the version the editor opened (None for a new pipeline; a new pipeline whose name is
/// taken is a Conflict). The name is the one in the text. `draft` stores it even with problems.
#[server(output = Json)]
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
#[server(output = Json)]
pub async fn delete_pipeline(name: String) -> Result<(), AppError> {
    crate::backend::backend()?.delete(&name).await
}

/// Starts a run of a saved, non-draft version with these inputs and env overrides; the run's id.
// JSON, not a form: inputs are any JSON values, and an empty list of overrides must arrive as one
// (a form encodes it as nothing, which then reads as a missing field).
#[server(input = Json, output = Json)]
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

/// Step `step` of `yaml` rendered exactly as it would be sent, with its token count and
/// estimated cost, without calling any provider. `inputs` get the declared defaults for what is
/// missing; `outputs` are the earlier steps' outputs by step name, for `{{ steps.X.output }}`
/// (missing ones render as an empty string and are listed in the error if the template cannot
/// render with that).
// JSON, like run_pipeline: inputs and outputs are any JSON values.
#[server(input = Json, output = Json)]
pub async fn preview_step(
    yaml: String,
    step: String,
    inputs: Map<String, Value>,
    outputs: Map<String, Value>,
) -> Result<Preview, AppError> {
    crate::backend::backend()?
        .preview(&yaml, &step, inputs, outputs)
        .await
}

/// The outputs of a stored run's steps (latest completed attempt per step), to preview with.
#[server(output = Json)]
pub async fn run_outputs(id: Uuid) -> Result<Map<String, Value>, AppError> {
    crate::backend::backend()?.run_outputs(id).await
}

/// Every provider configured on this server: kind, base URL, models, whether its key is set
/// and where from (never the key).
#[server(output = Json)]
pub async fn list_providers() -> Result<Vec<ProviderInfo>, AppError> {
    Ok(crate::backend::backend()?.providers().await)
}

/// A real minimal request to the provider `name` (one token), timed; `ok: false` with the
/// provider's error when it fails.
#[server(output = Json)]
pub async fn test_provider(name: String) -> Result<ProviderTest, AppError> {
    crate::backend::backend()?.test_provider(&name).await
}

/// Batch inputs (CSV or JSON lines) read and checked against the inputs `yaml` declares: the
/// rows that would run and, by line, the ones that would not. `Refused` when `yaml` is not valid
/// or the text is not readable at all (a CSV header without input names).
#[server(output = Json)]
pub async fn parse_batch(
    yaml: String,
    text: String,
    format: BatchFormat,
) -> Result<BatchRows, AppError> {
    crate::backend::backend()?
        .parse_batch(&yaml, &text, format)
        .await
}

/// Starts one run of a saved, non-draft version per input set, at most `concurrency` at a time;
/// the batch's id.
// JSON, like run_pipeline: the rows are any JSON values.
#[server(input = Json, output = Json)]
pub async fn start_batch(
    name: String,
    version: u32,
    rows: Vec<Map<String, Value>>,
    concurrency: u32,
) -> Result<Uuid, AppError> {
    crate::backend::backend()?
        .start_batch(&name, version, rows, concurrency)
        .await
}

/// How many of the batch's runs are stored in each status.
// The call's own type would be named `BatchProgress` too, after the function.
#[server(output = Json, name = GetBatchProgress)]
pub async fn batch_progress(id: Uuid) -> Result<BatchProgress, AppError> {
    crate::backend::backend()?.batch_progress(id).await
}

/// Cancels the batch's running runs (its queued ones never start); how many were running.
#[server(output = Json)]
pub async fn cancel_batch(id: Uuid) -> Result<u32, AppError> {
    crate::backend::backend()?.cancel_batch(id).await
}
