//! `POST /api/v1/ingest/events` (and its `/api/ingest/events` alias): pipelines running
//! elsewhere report their events here.
//!
//! Body: a JSON array of events in the bus's schema, each optionally with a client `id` (makes
//! retries safe) and `at` (when it happened; default: now):
//! `[{"id": "run-7/1", "event": "pipeline:started", "data": {…}}, …]`
//!
//! A batch is all-or-nothing: every event is validated first, and one bad event rejects the
//! batch with its index, publishing nothing. A valid batch is answered once it is in Postgres.

use std::collections::{HashMap, HashSet};

use app::models::EventBody;
use axum::{body::Body, extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::error::ApiError;
use crate::{
    bus::{PublishError, Submission},
    db::{self, projection::Origin, storable},
    state::AppState,
};

/// Larger bodies are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Most events in one batch.
pub const MAX_EVENTS: usize = 10_000;
/// Longest client event id.
const MAX_ID_LEN: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ingest))
}

/// One event of a batch; `http::otlp` makes these from spans.
#[derive(Debug, Deserialize)]
pub(super) struct IngestEvent {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub body: EventBody,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct IngestReceipt {
    /// Events published and stored.
    pub accepted: usize,
    /// Events skipped because an event with the same `id` was stored before.
    pub duplicates: usize,
    /// Sequence numbers given to the accepted events, in order.
    pub seqs: Vec<i64>,
}

#[utoipa::path(
    post,
    path = "/ingest/events",
    tag = "ingest",
    summary = "Report events of pipelines that run elsewhere; they appear like local runs",
    request_body(
        content = Vec<Object>,
        description = "1 to 10,000 events, each `{\"id\"?: client id (makes retries safe), \"at\"?: RFC 3339 time, \"event\": name, \"data\": {…}}` in the taxonomy of the README's *Live events*; all-or-nothing",
        example = json!([
            {"id": "run-7/0", "event": "pipeline:started", "data": {
                "execution_id": "0b9e4a52-3b7e-4d53-9a53-4c1f1f2a0c11", "pipeline": "nightly-summary",
                "inputs": {"day": "2026-11-24"}, "started_at": "2026-11-25T02:00:00Z"}},
            {"id": "run-7/1", "event": "log:entry", "data": {
                "level": "info", "message": "fetched 120 documents", "timestamp": "2026-11-25T02:00:01Z",
                "context": {"execution_id": "0b9e4a52-3b7e-4d53-9a53-4c1f1f2a0c11"}}},
        ]),
    ),
    responses(
        (status = 200, description = "Every event stored (duplicates of ids stored before skipped)", body = IngestReceipt),
        (status = 400, description = "The body is not UTF-8, not JSON, not an array, or empty", body = ApiError),
        (status = 403, description = "An event is about a run of pipescope's own engine", body = ApiError),
        (status = 413, description = "More than 8 MiB or 10,000 events", body = ApiError),
        (status = 422, description = "An event that cannot be used: its `index`, and the field's `path`", body = ApiError),
        (status = 429, description = "Too many ingest requests from this client; `Retry-After` says when to try again", body = ApiError),
        (status = 503, description = "The store could not be read or written; try again shortly", body = ApiError),
    )
)]
async fn ingest(
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<IngestReceipt>, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is larger than {} MiB; send the events in smaller batches",
                    MAX_BODY_BYTES >> 20
                ),
            )
        })?;
    let events = parse(&bytes)?;
    publish(&state, events).await.map(Json)
}

/// Publishes a validated batch (every event checked with [`storable::check`] and
/// [`EventBody::is_ingestible`]) all-or-nothing: the references are checked against the store
/// first, ids stored before are skipped, and the answer comes once the rest is in Postgres.
/// Shared by the ingest API and OpenTelemetry trace ingest (`http::otlp`).
pub(super) async fn publish(
    state: &AppState,
    events: Vec<IngestEvent>,
) -> Result<IngestReceipt, ApiError> {
    check_references(state, &events).await?;

    // Idempotency: skip ids already stored, and ids another request is storing right now.
    let ids: Vec<String> = events.iter().filter_map(|e| e.id.clone()).collect();
    let stored: HashSet<String> = db::events::stored_client_ids(&state.pool, &ids)
        .await
        .map_err(|e| ApiError::internal("the store could not be read", e))?
        .into_iter()
        .collect();
    let claim = state
        .ingest_claims
        .claim(ids.iter().filter(|id| !stored.contains(*id)));

    let mut duplicates = 0;
    let mut acks = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        if let Some(id) = &event.id {
            if !claim.owns(id) {
                duplicates += 1;
                continue;
            }
        }
        let (ack, done) = oneshot::channel();
        state.bus.submit(Submission {
            body: event.body,
            at: event.at.unwrap_or_else(Utc::now),
            origin: Origin::Ingest,
            client_id: event.id,
            ack: Some(ack),
        });
        acks.push((index, done));
    }
    let mut seqs = Vec::with_capacity(acks.len());
    let mut refused = None;
    for (index, done) in acks {
        match done.await.unwrap_or(Err(PublishError::Closed)) {
            Ok(seq) => seqs.push(seq),
            // The database refused this one event for good; the writer stored the rest.
            Err(PublishError::NotPersisted(reason)) => {
                refused.get_or_insert((index, reason));
            }
            Err(error) => return Err(ApiError::internal("the events could not be stored", error)),
        }
    }
    if let Some((index, reason)) = refused {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "event {index} could not be stored ({reason}); the other {} events of this batch \
                 were stored — fix that event and send it again",
                seqs.len()
            ),
        )
        .at(index));
    }
    drop(claim);
    Ok(IngestReceipt {
        accepted: seqs.len(),
        duplicates,
        seqs,
    })
}

/// Every failure names the problem and, past the outer array, the index of the bad event.
fn parse(bytes: &[u8]) -> Result<Vec<IngestEvent>, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    // Split into raw elements first (no intermediate tree), then decode each on its own so an
    // error names its index.
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(text).map_err(|e| {
        let what = if e.is_data() {
            "the body must be a JSON array of events".to_string()
        } else {
            format!("malformed JSON: {e}")
        };
        ApiError::bad_request(what)
    })?;
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "the batch is empty; send at least one event",
        ));
    }
    if items.len() > MAX_EVENTS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} events in one batch; at most {MAX_EVENTS} are accepted",
                items.len()
            ),
        ));
    }
    let mut seen_ids = HashSet::new();
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let invalid = |message: String| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).at(index)
            };
            // Decoded plainly first; only a failure is decoded again, tracking the path, to
            // say where (tracking the path of every event stood out in the ingest profile).
            let decoded = serde_json::from_str::<IngestEvent>(item.get());
            let event: IngestEvent = match decoded {
                Ok(event) => Ok(event),
                Err(_) => serde_path_to_error::deserialize(
                    &mut serde_json::Deserializer::from_str(item.get()),
                ),
            }
            .map_err(|e| {
                // Only on failure: the event's name, for the message.
                let name = serde_json::from_str::<serde_json::Value>(item.get())
                    .ok()
                    .and_then(|v| v.get("event")?.as_str().map(str::to_owned));
                let path = e.path().to_string();
                let mut error = invalid(format!(
                    "event {index}{}: {}",
                    name.as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default(),
                    e.inner()
                ));
                if path != "." {
                    error.path = Some(path);
                }
                error
            })?;
            // JSON carries a NUL only as the `\u0000` escape: only such events are walked.
            storable::check(&event.body, item.get().contains("\\u0000")).map_err(|refused| {
                unstorable(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("event {index}"),
                    &event.body,
                    refused,
                )
                .at(index)
            })?;
            if !event.body.is_ingestible() {
                return Err(invalid(format!(
                    "event {index}: {} is produced by pipescope itself and cannot be ingested",
                    event.body.name()
                )));
            }
            if let Some(id) = &event.id {
                if id.is_empty() || id.len() > MAX_ID_LEN {
                    return Err(invalid(format!(
                        "event {index}: id must be 1 to {MAX_ID_LEN} characters"
                    )));
                }
                if !seen_ids.insert(id.clone()) {
                    return Err(invalid(format!(
                        "event {index}: id {id:?} appears twice in this batch"
                    )));
                }
            }
            Ok(event)
        })
        .collect()
}

/// `what` (an event, a span) holds what the store cannot: the refusal names it and the field.
pub(super) fn unstorable(
    status: StatusCode,
    what: &str,
    body: &EventBody,
    refused: storable::Unstorable,
) -> ApiError {
    let mut error = ApiError::new(
        status,
        format!(
            "{what} ({}): {} {}",
            body.name(),
            refused.path,
            refused.message
        ),
    );
    error.path = Some(refused.path);
    error
}

/// Events about an execution need that execution, and the stored events about a step's prompt,
/// response or completion need that step: started earlier in this batch or known to the store.
/// Ingest only ever touches executions ingest reported: a run of pipescope's own engine (stored
/// or still running here) is refused, whatever the event.
async fn check_references(state: &AppState, events: &[IngestEvent]) -> Result<(), ApiError> {
    let mut started: HashSet<Uuid> = HashSet::new();
    // Each event about an execution, and whether that execution started earlier in the batch.
    let mut referenced: Vec<(usize, Uuid, bool)> = Vec::new();
    let mut steps_started: HashSet<(Uuid, &str)> = HashSet::new();
    let mut unknown_steps: Vec<(usize, Uuid, &str)> = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let scope = event.body.scope();
        let Some(id) = scope.execution_id else {
            continue;
        };
        if let EventBody::PipelineStarted(_) = &event.body {
            started.insert(id);
        }
        referenced.push((index, id, started.contains(&id)));
        match (&event.body, scope.step) {
            (EventBody::StepStarted(_), Some(step)) => {
                steps_started.insert((id, step));
            }
            (
                EventBody::PromptSent(_)
                | EventBody::ResponseReceived(_)
                | EventBody::StepCompleted(_),
                Some(step),
            ) if !steps_started.contains(&(id, step)) => unknown_steps.push((index, id, step)),
            _ => {}
        }
    }
    let unprocessable = |index: usize, message: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).at(index)
    };
    let not_ingested = |index: usize, id: Uuid| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "event {index}: execution {id} is a run of pipescope's own engine; ingest may \
                 only report executions it started (give your run an id of its own)"
            ),
        )
        .at(index)
    };
    let read_failed = |e: sqlx::Error| ApiError::internal("the store could not be read", e);
    // A run the engine has just started may not be stored yet.
    if let Some((index, id, _)) = referenced
        .iter()
        .find(|(_, id, _)| state.engine.is_running_here(*id))
    {
        return Err(not_ingested(*index, *id));
    }
    if !referenced.is_empty() {
        let mut ids: Vec<Uuid> = referenced.iter().map(|(_, id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let known: HashMap<Uuid, Origin> = db::events::known_executions(&state.pool, &ids)
            .await
            .map_err(read_failed)?
            .into_iter()
            .collect();
        for (index, id, started_before) in &referenced {
            match known.get(id) {
                Some(Origin::Engine) => return Err(not_ingested(*index, *id)),
                Some(Origin::Ingest) => {}
                None if *started_before => {}
                None => {
                    return Err(unprocessable(*index, format!(
                        "event {index}: execution {id} is unknown; send its pipeline:started first (in this batch or an earlier one)"
                    )))
                }
            }
        }
    }
    if !unknown_steps.is_empty() {
        let pairs: Vec<(Uuid, String)> = unknown_steps
            .iter()
            .map(|(_, id, step)| (*id, (*step).to_owned()))
            .collect();
        let known: HashSet<(Uuid, String)> = db::events::known_steps(&state.pool, &pairs)
            .await
            .map_err(read_failed)?
            .into_iter()
            .collect();
        if let Some((index, id, step)) = unknown_steps
            .into_iter()
            .find(|(_, id, step)| !known.contains(&(*id, (*step).to_owned())))
        {
            let mut error = unprocessable(index, format!(
                "event {index} ({}): step {step:?} of execution {id} was never started; send its step:started first (in this batch or an earlier one)",
                events[index].body.name()
            ));
            error.path = Some("data.step".into());
            return Err(error);
        }
    }
    Ok(())
}
