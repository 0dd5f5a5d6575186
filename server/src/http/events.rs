//! `GET /api/v1/events` (and its `/api/events` alias): the live event stream (Server-Sent
//! Events); `GET /api/v1/bus/stats`: the bus's counters.
//!
//! `id:` is the event's sequence number, `event:` its name, `data:` the event as JSON.
//! Query: `execution=<id>` (and `step=<name>`) to follow one execution or step. A reconnecting
//! client sends `Last-Event-ID` (browsers do it themselves; `?last_event_id=` works too) and gets
//! exactly what it missed, from memory or Postgres, or a `bus:resync` when that is impossible.
//! `bus:heartbeat` and `bus:resync` carry no `id:`, so they never move a client's position.

use std::convert::Infallible;

use app::models::{
    events::{Heartbeat, Resync},
    EventBody,
};
use axum::{
    body::Body,
    extract::{Query, State},
    http::{header, HeaderMap, HeaderName},
    response::{IntoResponse, Response},
    Json,
};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures::Stream;
use serde::Deserialize;
use sqlx::PgPool;
use tokio_util::task::AbortOnDropHandle;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::ApiError;
use crate::{
    bus::{wire, Filter, Next, Replay},
    db,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stream))
        .routes(routes!(stats))
}

#[derive(Debug, Deserialize)]
struct StreamQuery {
    execution: Option<String>,
    step: Option<String>,
    last_event_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/bus/stats",
    tag = "events",
    summary = "The event bus's counters on this instance",
    responses((status = 200, description = "Published, relayed, subscribers, dropped, the replay window, flushed", body = crate::bus::BusStats))
)]
async fn stats(State(state): State<AppState>) -> Json<crate::bus::BusStats> {
    Json(state.bus.stats())
}

#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    summary = "The live event stream (Server-Sent Events): `id:` the seq, `event:` the name, `data:` the event",
    params(
        ("execution" = Option<String>, Query, description = "Follow one execution (its id)"),
        ("step" = Option<String>, Query, description = "Follow one step of that execution (needs `execution`)"),
        ("last_event_id" = Option<String>, Query, description = "Resume after this seq (as the `Last-Event-ID` header)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this seq: the events missed, then the live stream"),
    ),
    responses(
        (status = 200, description = "The stream; it stays open", body = String, content_type = "text/event-stream"),
        (status = 400, description = "A filter or Last-Event-ID that cannot be used", body = ApiError),
        (status = 429, description = "Too many streams open (in all or from this client); `Retry-After` says when to try again", body = ApiError),
    )
)]
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let filter = parse_filter(&query)?;
    let header_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string());
    let after = match header_id.or(query.last_event_id) {
        Some(id) if !id.trim().is_empty() => Some(id.trim().parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!(
                "Last-Event-ID must be the sequence number of an event (an integer), got {id:?}"
            ))
        })?),
        _ => None,
    };

    // The frames are written here rather than by axum's `Sse`, which encodes every event for
    // every subscriber and sends each as its own write: a live event's frame is encoded once by
    // the bus and shared, and a replay writes many frames at once.
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Tells nginx-style proxies not to buffer the stream.
            (HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(events(state, filter, after)),
    )
        .into_response())
}

fn parse_filter(query: &StreamQuery) -> Result<Filter, ApiError> {
    let execution = match query.execution.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(id) => Some(id.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "execution must be an execution id (a UUID), got {id:?}"
            ))
        })?),
    };
    let step = query.step.clone().filter(|s| !s.trim().is_empty());
    if step.is_some() && execution.is_none() {
        return Err(ApiError::bad_request(
            "step needs execution: steps are named per execution, add execution=<id>",
        ));
    }
    Ok(Filter { execution, step })
}

/// A replay writes its frames in buffers of about this size: one write for many events, and
/// what a replaying client holds beside its page of rows.
const REPLAY_WRITE: usize = 64 * 1024;

fn events(
    state: AppState,
    filter: Filter,
    after: Option<i64>,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let (mut subscription, replay) = state.bus.subscribe(filter.clone(), after);
    let mut shutdown = state.shutdown.subscribe();
    let live = state.live;
    // Of the state, only the pool (for a replay from the store) is kept for the stream's whole
    // life: every open stream holds what it captures.
    let pool = state.pool.clone();
    drop(state);
    async_stream::stream! {
        // After a read from Postgres with no upper bound, events flushed between subscribing and
        // reading arrive both ways: live ones up to here were already sent.
        let mut replayed_through = None;
        match replay {
            Replay::Nothing => {}
            Replay::Window(events) => {
                for event in events {
                    yield Ok(event.frame());
                }
            }
            Replay::Store { after, before, then } => {
                // Counted first, so a client too far behind costs one index scan, not a read.
                // Boxed: kept inline, this rarely used future would enlarge every connection's
                // state for its whole life.
                match Box::pin(db::events::count_after(&pool, after, before, live.replay_limit + 1)).await {
                    Ok((count, _)) if count > live.replay_limit => {
                        yield Ok(resync("too far behind to replay", None));
                    }
                    Ok((_, newest)) => {
                        // Page by page up to the newest event counted, so memory is at most two
                        // pages whatever the size, and events flushed meanwhile come live instead.
                        // The next page is read while this one is sent.
                        let (mut cursor, mut failed) = (after, false);
                        let mut reading = newest
                            .filter(|&newest| cursor < newest)
                            .map(|through| read_page(&pool, &filter, cursor, through, live.replay_page));
                        while let Some(page) = reading.take() {
                            let page = match page.await {
                                Ok(Ok(page)) => Ok(page),
                                Ok(Err(error)) => Err(error.to_string()),
                                Err(error) => Err(format!("the read stopped: {error}")),
                            };
                            match page {
                                Ok((page, through)) => {
                                    cursor = match page.last() {
                                        Some(last) if page.len() as i64 == live.replay_page => last.seq,
                                        _ => through,
                                    };
                                    reading = newest
                                        .filter(|&newest| cursor < newest)
                                        .map(|through| read_page(&pool, &filter, cursor, through, live.replay_page));
                                    let mut out = BytesMut::new();
                                    for event in &page {
                                        write_stored(&mut out, event);
                                        if out.len() >= REPLAY_WRITE {
                                            yield Ok(out.split().freeze());
                                        }
                                    }
                                    if !out.is_empty() {
                                        yield Ok(out.freeze());
                                    }
                                }
                                Err(error) => {
                                    tracing::warn!("cannot replay from the store: {error}");
                                    yield Ok(resync("the store could not be read to replay", None));
                                    failed = true;
                                    break;
                                }
                            }
                        }
                        if !failed {
                            if before.is_none() {
                                replayed_through = newest;
                            }
                            for event in then {
                                yield Ok(event.frame());
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!("cannot replay from the store: {error}");
                        yield Ok(resync("the store could not be read to replay", None));
                    }
                }
            }
            Replay::Gap => yield Ok(resync("events since Last-Event-ID are no longer available", None)),
        }
        let start = tokio::time::Instant::now();
        let mut heartbeat = tokio::time::interval_at(start + live.heartbeat, live.heartbeat);
        let mut keep_alive = tokio::time::interval_at(start + live.keep_alive, live.keep_alive);
        loop {
            tokio::select! {
                next = subscription.next() => match next {
                    Next::Event(event) => {
                        if replayed_through.is_none_or(|through| event.seq > through) {
                            yield Ok(event.frame());
                        }
                    }
                    Next::Lagged(lost) => yield Ok(resync("this connection fell behind", Some(lost))),
                    Next::Closed => break,
                },
                _ = heartbeat.tick() => yield Ok(unnumbered(&EventBody::BusHeartbeat(Heartbeat {
                    interval_ms: live.heartbeat.as_millis() as u64,
                }))),
                _ = keep_alive.tick() => yield Ok(Bytes::from_static(wire::KEEP_ALIVE)),
                _ = shutdown.changed() => break,
            }
        }
    }
}

/// Starts reading one page of a replay (`cursor < seq <= through`) in a task of its own, so it
/// proceeds while the stream sends the page before; a stream that ends stops it.
fn read_page(
    pool: &PgPool,
    filter: &Filter,
    cursor: i64,
    through: i64,
    limit: i64,
) -> AbortOnDropHandle<Result<(Vec<db::events::StoredText>, i64), sqlx::Error>> {
    let (pool, execution, step) = (pool.clone(), filter.execution, filter.step.clone());
    AbortOnDropHandle::new(tokio::spawn(async move {
        let follow = db::events::Follow {
            execution,
            step: step.as_deref(),
        };
        let page = db::events::page_after(&pool, cursor, through, follow, limit).await?;
        Ok((page, through))
    }))
}

/// A stored event, sent on without decoding its JSON.
fn write_stored(out: &mut BytesMut, event: &db::events::StoredText) {
    wire::write_frame(out, Some(event.seq), &event.name, &stored_json(event));
}

/// The event as [`crate::bus::Delivered::json`] has it: `seq`, `at`, `event` and `data` in that order and
/// written the same way; `data` is the stored text, the same JSON value with its object keys in
/// `jsonb`'s order and its spacing.
fn stored_json(event: &db::events::StoredText) -> String {
    use std::fmt::Write;
    // Through serde, so the timestamp and the name are written exactly as for a live event.
    let at = serde_json::to_string(&event.at).unwrap_or_default();
    let name = serde_json::to_string(&event.name).unwrap_or_default();
    let mut json = String::with_capacity(event.data.len() + at.len() + name.len() + 48);
    let _ = write!(
        json,
        r#"{{"seq":{},"at":{at},"event":{name},"data":{}}}"#,
        event.seq, event.data
    );
    json
}

/// Bus signals: not part of the numbered stream.
fn unnumbered(body: &EventBody) -> Bytes {
    #[derive(serde::Serialize)]
    struct Unnumbered<'a> {
        at: chrono::DateTime<Utc>,
        #[serde(flatten)]
        body: &'a EventBody,
    }
    let json = serde_json::to_string(&Unnumbered {
        at: Utc::now(),
        body,
    })
    .unwrap_or_default();
    wire::frame(None, body.name(), &json)
}

fn resync(reason: &str, dropped: Option<u64>) -> Bytes {
    unnumbered(&EventBody::BusResync(Resync {
        reason: reason.to_string(),
        dropped,
    }))
}

#[cfg(test)]
mod tests {
    use app::models::{Event, EventBody};
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;
    use crate::{bus::Delivered, db::events::StoredText};

    #[tokio::test]
    async fn frames_are_written_as_axums_sse_writes_them() {
        use axum::response::sse::{Event as SseEvent, Sse};
        let cases = [
            (Some(42), "step:started", r#"{"seq":42,"data":{"a":"b"}}"#),
            (None, "bus:heartbeat", r#"{"interval_ms":10000}"#),
            (Some(7), "log:entry", "two\nlines\r\nand\ra last"),
            (Some(8), "log:entry", ""),
        ];
        for (id, name, data) in cases {
            let mut event = SseEvent::default();
            if let Some(id) = id {
                event = event.id(id.to_string());
            }
            let event = event.event(name).data(data);
            let mut ours = BytesMut::new();
            wire::write_frame(&mut ours, id, name, data);
            assert_eq!(axum_bytes(event).await, ours, "{name} {data:?}");
            assert_eq!(wire::frame(id, name, data), ours);
        }
        let keep_alive = SseEvent::default().comment("");
        assert_eq!(axum_bytes(keep_alive).await, wire::KEEP_ALIVE);

        async fn axum_bytes(event: SseEvent) -> Bytes {
            let stream = futures::stream::iter([Ok::<_, Infallible>(event)]);
            let body = Sse::new(stream).into_response().into_body();
            axum::body::to_bytes(body, usize::MAX)
                .await
                .expect("a body")
        }
    }

    /// The `data` of an event as serde writes it: what a store keeping text would hold.
    fn data_text(body: &EventBody) -> String {
        let whole = serde_json::to_string(body).expect("event JSON");
        let prefix = format!(r#"{{"event":"{}","data":"#, body.name());
        whole
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix('}'))
            .expect("adjacently tagged")
            .to_string()
    }

    #[test]
    fn a_stored_event_is_written_as_the_live_stream_writes_it() {
        let execution = uuid::Uuid::new_v4();
        let bodies = [
            json!({"event": "pipeline:started", "data": {"execution_id": execution,
                "pipeline": "brief", "config": {"steps": 1}, "inputs": {"topic": "a \"quoted\"\nline"},
                "started_at": "2026-01-02T03:04:05.123456789Z", "version": 3}}),
            json!({"event": "prompt:sent", "data": {"execution_id": execution, "step": "outline",
                "prompt": "Écris un plan — sans détour.", "template": "{{ topic }}",
                "variables": {"topic": "x"}, "token_count": 9}}),
            json!({"event": "response:received", "data": {"execution_id": execution,
                "step": "outline", "response": "1. Events\t2. \u{1}",
                "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}}}),
            json!({"event": "step:completed", "data": {"execution_id": execution, "step": "outline",
                "duration_ms": 140, "tokens": 16, "cost_usd": 0.0004, "status": "completed"}}),
            json!({"event": "log:entry", "data": {"level": "warn", "message": "global",
                "timestamp": "2026-01-02T03:04:05Z"}}),
            json!({"event": "bus:resync", "data": {"reason": "event 7 could not be stored; reload"}}),
        ];
        // Postgres keeps microseconds; the serde format drops zero fractions, so each length.
        let ats = [
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.100Z",
            "2026-01-02T03:04:05.123456Z",
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            let body: EventBody = serde_json::from_value(body).expect("a valid event");
            for at in ats {
                let at: DateTime<Utc> = at.parse().expect("timestamp");
                let stored = StoredText {
                    seq: 1_000_000 + i as i64,
                    at,
                    name: body.name().to_string(),
                    data: data_text(&body),
                };
                let live = Delivered::new(Event {
                    seq: stored.seq,
                    at,
                    body: body.clone(),
                });
                assert_eq!(stored_json(&stored), live.json());
            }
        }
    }
}
