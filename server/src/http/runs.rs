//! The run API: start, inspect and control pipeline runs.
//!
//! - `POST /api/executions` `{pipeline | yaml, version?, inputs?, env?, provider?, model?}` → 202
//! - `GET  /api/executions/{id}` → the execution with every step attempt
//! - `GET  /api/executions/{id}/transcript` → its prompts and responses as plain text
//! - `POST /api/executions/{id}/pause | resume | cancel` (cancel takes `{reason?}`)
//! - `POST /api/executions/{id}/rerun` → 202, a new run with the same inputs
//! - `POST /api/executions/{id}/steps/{step}/replay` `{prompt?, system?, provider?, model?, attempt?}` → 202
//! - `POST /api/batches` `{pipeline | yaml, inputs: [{…}] | csv, concurrency?, …}` → 202
//! - `GET  /api/batches/{id}`, `POST /api/batches/{id}/cancel`
//! - `GET  /api/pipelines`, `POST /api/pipelines/validate` (body: the YAML)

use axum::{
    body::{Body, Bytes},
    extract::{Path, State},
    http::{header, StatusCode},
    routing::{get, post},
    Json, Router,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Value};
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

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/executions", post(start))
        .route("/api/executions/{id}", get(detail))
        .route("/api/executions/{id}/transcript", get(transcript))
        .route("/api/executions/{id}/pause", post(pause))
        .route("/api/executions/{id}/resume", post(resume))
        .route("/api/executions/{id}/cancel", post(cancel))
        .route("/api/executions/{id}/rerun", post(rerun))
        .route("/api/executions/{id}/steps/{step}/replay", post(replay))
        .route("/api/batches", post(start_batch))
        .route("/api/batches/{id}", get(batch))
        .route("/api/batches/{id}/cancel", post(cancel_batch))
        .route("/api/pipelines", get(pipelines))
        .route("/api/pipelines/validate", post(validate))
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

async fn start(
    State(state): State<AppState>,
    body: Body,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let request: StartRequest = json_body(&read(body).await?)?;
    let started = state.engine.start(request).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

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

#[derive(Debug, Serialize, Deserialize)]
pub struct ControlAnswer {
    pub execution_id: Uuid,
    pub state: RunState,
}

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    #[serde(default)]
    reason: Option<String>,
}

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

async fn rerun(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let started = state.engine.rerun(id(&raw)?).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

async fn replay(
    State(state): State<AppState>,
    Path((raw, step)): Path<(String, String)>,
    body: Body,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let request: ReplayRequest = json_body(&read(body).await?)?;
    let replayed = state.engine.replay(id(&raw)?, &step, request).await?;
    Ok((StatusCode::ACCEPTED, Json(replayed)))
}

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

async fn batch(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "batch_id": batch_id, "statuses": counts })))
}

async fn cancel_batch(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let batch_id = id(&raw)?;
    let cancelled = state.engine.cancel_batch(batch_id)?;
    Ok(Json(
        json!({ "batch_id": batch_id, "cancelled": cancelled }),
    ))
}

async fn pipelines(
    State(state): State<AppState>,
) -> Result<Json<Vec<DefinitionSummary>>, ApiError> {
    library::list(&state.pool, state.engine.catalog())
        .await
        .map(Json)
        .map_err(|e| ApiError::internal("the store could not be read", e))
}

/// The validator's answer: 200 either way; `valid` says which.
#[derive(Debug, Serialize, Deserialize)]
pub struct Validation {
    pub valid: bool,
    pub diagnostics: Vec<pipeline::Diagnostic>,
    /// The validated pipeline (defaults applied, run order) when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<pipeline::Pipeline>,
}

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
