//! The run API: start, inspect and control pipeline runs. Paths below are relative to the API's
//! prefix (`/api/v1`, and the unversioned `/api` alias; see [`super::api`]).
//!
//! - `POST /executions` `{pipeline | yaml, version?, inputs?, env?, provider?, model?}` → 202
//! - `GET  /executions/{id}` → the execution with every step attempt
//! - `GET  /executions/{id}/transcript` → its prompts and responses as plain text
//! - `POST /executions/{id}/pause | resume | cancel` (cancel takes `{reason?}`)
//! - `POST /executions/{id}/rerun` → 202, a new run with the same inputs
//! - `POST /executions/{id}/steps/{step}/replay` `{prompt?, system?, provider?, model?, attempt?}` → 202
//! - `POST /batches` `{pipeline | yaml, inputs: [{…}] | csv, concurrency?, …}` → 202
//! - `GET  /batches/{id}`, `POST /batches/{id}/cancel`
//! - `GET  /pipelines`, `POST /pipelines/validate` (body: the YAML)

use axum::{
    body::{Body, Bytes},
    extract::{Path, State},
    http::{header, StatusCode},
    Json,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::error::ApiError;
use crate::{
    db::executions,
    engine::{
        batch::{BatchError, BatchRequest, BatchStarted},
        library::{self, DefinitionSummary},
        ReplayRequest, Replayed, RunState, StartRequest, Started,
    },
    state::AppState,
};

/// Largest request body (a pipeline file, a batch of input sets).
const MAX_BODY_BYTES: usize = 4 << 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(detail))
        .routes(routes!(transcript))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(cancel))
        .routes(routes!(rerun))
        .routes(routes!(replay))
        .routes(routes!(start_batch))
        .routes(routes!(batch))
        .routes(routes!(cancel_batch))
        .routes(routes!(pipelines))
        .routes(routes!(validate))
}

/// Reads a body up to [`MAX_BODY_BYTES`]; larger ones get a 413 that says the limit.
async fn read(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} MiB", MAX_BODY_BYTES >> 20),
            )
        })
}

/// Parses a JSON body; the error names the field that is wrong.
fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let mut api = ApiError::bad_request(format!("the body is not valid: {}", error.inner()));
        if path != "." {
            api.path = Some(path);
        }
        api
    })
}

fn id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("`{raw}` is not an execution id (a UUID)"),
        )
    })
}

#[utoipa::path(
    post,
    path = "/executions",
    tag = "executions",
    summary = "Start a run of a saved pipeline, or of the YAML sent",
    request_body = StartRequest,
    responses(
        (status = 202, description = "Accepted and stored; it runs now", body = Started),
        (status = 400, description = "The body is not the expected JSON; `path` names the field", body = ApiError),
        (status = 404, description = "No saved pipeline (or version) of that name", body = ApiError),
        (status = 409, description = "The YAML changes a saved pipeline; send `\"save\": true` to make it the next version", body = ApiError),
        (status = 413, description = "The body is larger than 4 MiB", body = ApiError),
        (status = 422, description = "An invalid pipeline (every problem in `diagnostics`), an unknown or missing input, an unknown provider", body = ApiError),
        (status = 429, description = "Too many runs executing or too many starts from this client; `Retry-After` says when to try again", body = ApiError),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn start(
    State(state): State<AppState>,
    body: Body,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let request: StartRequest = json_body(&read(body).await?)?;
    let started = state.engine.start(request).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

#[utoipa::path(
    get,
    path = "/executions/{id}",
    tag = "executions",
    summary = "A run with every step attempt: prompt, template, variables, response, tokens, cost",
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The run and its steps", body = app::models::ExecutionDetail),
        (status = 404, description = "No such execution (or the id is not a UUID)", body = ApiError),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn detail(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<app::models::ExecutionDetail>, ApiError> {
    let id = id(&raw)?;
    state
        .execution_detail(id)
        .await
        .map_err(|e| ApiError::internal("the store could not be read", e))?
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no execution {id}")))
}

#[utoipa::path(
    get,
    path = "/executions/{id}/transcript",
    tag = "executions",
    summary = "A run's prompts and responses as plain text (an attachment)",
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The transcript", body = String, content_type = "text/plain"),
        (status = 404, description = "No such execution (or the id is not a UUID)", body = ApiError),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn transcript(
    state: State<AppState>,
    raw: Path<String>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let Json(run) = detail(state, raw).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"run-{}.txt\"", run.id),
            ),
        ],
        run.transcript(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ControlAnswer {
    pub execution_id: Uuid,
    pub state: RunState,
}

#[utoipa::path(
    post,
    path = "/executions/{id}/pause",
    tag = "executions",
    summary = "Pause a run: running steps finish, no new ones start",
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The run's state now", body = ControlAnswer),
        (status = 404, description = "No such execution (or the id is not a UUID)", body = ApiError),
        (status = 409, description = "The run is not in a state that allows this (not running here, or still running)", body = ApiError),
    )
)]
async fn pause(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<ControlAnswer>, ApiError> {
    let execution_id = id(&raw)?;
    let state = state.engine.pause(execution_id)?;
    Ok(Json(ControlAnswer {
        execution_id,
        state,
    }))
}

#[utoipa::path(
    post,
    path = "/executions/{id}/resume",
    tag = "executions",
    summary = "Resume a paused run",
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The run's state now", body = ControlAnswer),
        (status = 404, description = "No such execution (or the id is not a UUID)", body = ApiError),
        (status = 409, description = "The run is not in a state that allows this (not running here, or still running)", body = ApiError),
    )
)]
async fn resume(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<ControlAnswer>, ApiError> {
    let execution_id = id(&raw)?;
    let state = state.engine.resume(execution_id)?;
    Ok(Json(ControlAnswer {
        execution_id,
        state,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "wrong topic"}))]
struct CancelRequest {
    /// Shown with the run and in its log.
    #[serde(default)]
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/executions/{id}/cancel",
    tag = "executions",
    summary = "Cancel a run: in-flight provider requests are closed at once",
    params(("id" = Uuid, Path, description = "The execution's id")),
    request_body = Option<CancelRequest>,
    responses(
        (status = 200, description = "The run's state now", body = ControlAnswer),
        (status = 400, description = "The body is not the expected JSON; `path` names the field", body = ApiError),
        (status = 404, description = "No such execution (or the id is not a UUID)", body = ApiError),
        (status = 409, description = "The run is not in a state that allows this (not running here, or still running)", body = ApiError),
        (status = 413, description = "The body is larger than 4 MiB", body = ApiError),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Body,
) -> Result<Json<ControlAnswer>, ApiError> {
    let execution_id = id(&raw)?;
    let request: CancelRequest = json_body(&read(body).await?)?;
    let state = state.engine.cancel(execution_id, request.reason)?;
    Ok(Json(ControlAnswer {
        execution_id,
        state,
    }))
}

#[utoipa::path(
    post,
    path = "/executions/{id}/rerun",
    tag = "executions",
    summary = "Start a new run with the same pipeline version, inputs, env and overrides",
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses(
        (status = 202, description = "The new run", body = Started),
        (status = 404, description = "No such execution (or the id is not a UUID)", body = ApiError),
        (status = 409, description = "The run is not in a state that allows this (not running here, or still running)", body = ApiError),
        (status = 422, description = "An invalid pipeline (every problem in `diagnostics`), an unknown or missing input, an unknown provider", body = ApiError),
        (status = 429, description = "Too many runs executing or too many starts from this client; `Retry-After` says when to try again", body = ApiError),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn rerun(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let started = state.engine.rerun(id(&raw)?).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

#[utoipa::path(
    post,
    path = "/executions/{id}/steps/{step}/replay",
    tag = "executions",
    summary = "Replay one step of a finished run with an edited prompt or another model",
    params(("id" = Uuid, Path, description = "The execution's id"), ("step" = String, Path, description = "The step's name")),
    request_body = Option<ReplayRequest>,
    responses(
        (status = 202, description = "Recorded as the step's next attempt, linked to the one it replays", body = Replayed),
        (status = 400, description = "The body is not the expected JSON; `path` names the field", body = ApiError),
        (status = 404, description = "No such execution, step or attempt", body = ApiError),
        (status = 409, description = "The run is not in a state that allows this (not running here, or still running)", body = ApiError),
        (status = 413, description = "The body is larger than 4 MiB", body = ApiError),
        (status = 422, description = "An invalid pipeline (every problem in `diagnostics`), an unknown or missing input, an unknown provider", body = ApiError),
        (status = 429, description = "Too many runs executing or too many starts from this client; `Retry-After` says when to try again", body = ApiError),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn replay(
    State(state): State<AppState>,
    Path((raw, step)): Path<(String, String)>,
    body: Body,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let request: ReplayRequest = json_body(&read(body).await?)?;
    let replayed = state.engine.replay(id(&raw)?, &step, request).await?;
    Ok((StatusCode::ACCEPTED, Json(replayed)))
}

/// A batch's runs by status.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchCounts {
    pub batch_id: Uuid,
    /// Runs of the batch per status (`pending`, `running`, `completed`, …); statuses no run
    /// has are left out.
    #[schema(value_type = std::collections::HashMap<String, i64>)]
    pub statuses: Map<String, Value>,
}

/// What cancelling a batch did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchCancelled {
    pub batch_id: Uuid,
    /// Runs cancelled: those running and those still queued.
    pub cancelled: usize,
}

#[utoipa::path(
    post,
    path = "/batches",
    tag = "batches",
    summary = "Start one run per input set (JSON objects or CSV), `concurrency` at a time",
    request_body = BatchRequest,
    responses(
        (status = 202, description = "The batch and its runs' ids, in input order", body = BatchStarted),
        (status = 400, description = "The body is not the expected JSON; `path` names the field", body = ApiError),
        (status = 404, description = "No saved pipeline (or version) of that name", body = ApiError),
        (status = 409, description = "The YAML changes a saved pipeline; send `\"save\": true`", body = ApiError),
        (status = 413, description = "The body is larger than 4 MiB", body = ApiError),
        (status = 422, description = "An invalid pipeline, or a bad input set (its `index`)", body = ApiError),
        (status = 429, description = "Too many runs executing or too many starts from this client; `Retry-After` says when to try again", body = ApiError),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn start_batch(
    State(state): State<AppState>,
    body: Body,
) -> Result<(StatusCode, Json<BatchStarted>), ApiError> {
    let request: BatchRequest = json_body(&read(body).await?)?;
    match state.engine.start_batch(request).await {
        Ok(started) => Ok((StatusCode::ACCEPTED, Json(started))),
        Err(BatchError::Engine(error)) => Err(error.into()),
        Err(BatchError::Item(item)) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, item.error).at(item.index))
        }
    }
}

#[utoipa::path(
    get,
    path = "/batches/{id}",
    tag = "batches",
    summary = "A batch's runs counted by status",
    params(("id" = Uuid, Path, description = "The batch's id")),
    responses(
        (status = 200, description = "Runs by status", body = BatchCounts),
        (status = 404, description = "No runs of that batch have started", body = ApiError),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn batch(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<BatchCounts>, ApiError> {
    let batch_id = id(&raw)?;
    let counts = executions::batch_counts(&state.pool, batch_id)
        .await
        .map_err(|e| ApiError::internal("the store could not be read", e))?;
    if counts.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no runs of batch {batch_id} have started"),
        ));
    }
    Ok(Json(BatchCounts {
        batch_id,
        statuses: counts,
    }))
}

#[utoipa::path(
    post,
    path = "/batches/{id}/cancel",
    tag = "batches",
    summary = "Cancel a batch's runs; queued ones never start",
    params(("id" = Uuid, Path, description = "The batch's id")),
    responses(
        (status = 200, description = "How many runs were cancelled", body = BatchCancelled),
        (status = 404, description = "The id is not a UUID", body = ApiError),
        (status = 409, description = "The batch has no runs in progress on this server", body = ApiError),
    )
)]
async fn cancel_batch(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<BatchCancelled>, ApiError> {
    let batch_id = id(&raw)?;
    let cancelled = state.engine.cancel_batch(batch_id)?;
    Ok(Json(BatchCancelled {
        batch_id,
        cancelled,
    }))
}

#[utoipa::path(
    get,
    path = "/pipelines",
    tag = "pipelines",
    summary = "The saved pipelines, latest versions",
    responses(
        (status = 200, description = "One entry per pipeline", body = Vec<DefinitionSummary>),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn pipelines(
    State(state): State<AppState>,
) -> Result<Json<Vec<DefinitionSummary>>, ApiError> {
    library::list(&state.pool, state.engine.catalog())
        .await
        .map(Json)
        .map_err(|e| ApiError::internal("the store could not be read", e))
}

/// The validator's answer: 200 either way; `valid` says which.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    pub diagnostics: Vec<pipeline::Diagnostic>,
    /// The validated pipeline (defaults applied, run order) when valid: the file's keys, as
    /// the README's *Pipeline files* describes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub pipeline: Option<pipeline::Pipeline>,
}

#[utoipa::path(
    post,
    path = "/pipelines/validate",
    tag = "pipelines",
    summary = "Check a pipeline's YAML without saving or running it",
    request_body(
        content = String,
        content_type = "text/plain",
        description = "The pipeline file's text (YAML); any content type is read as text",
        example = json!("name: one\nsteps:\n  - name: greet\n    provider: simulated\n    prompt: Say hello.\n"),
    ),
    responses(
        (status = 200, description = "`valid` says whether it is; every problem is in `diagnostics`", body = Validation),
        (status = 413, description = "The text is larger than 4 MiB", body = ApiError),
    )
)]
async fn validate(State(state): State<AppState>, body: Body) -> Result<Json<Validation>, ApiError> {
    let body = read(body).await?;
    Ok(Json(match state.engine.validate(&body) {
        Ok(pipeline) => Validation {
            valid: true,
            diagnostics: Vec::new(),
            pipeline: Some(pipeline),
        },
        Err(diagnostics) => Validation {
            valid: false,
            diagnostics,
            pipeline: None,
        },
    }))
}
