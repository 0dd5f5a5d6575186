//! `GET /api/events`: the live event stream (Server-Sent Events).
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
    extract::{Query, State},
    http::{header, HeaderMap, HeaderValue},
    response::{
        sse::{self, Sse},
        IntoResponse, Response,
    },
    routing::get,
    Json, Router,
};
use chrono::Utc;
use futures::Stream;
use serde::Deserialize;

use super::error::ApiError;
use crate::{
    bus::{Delivered, Filter, Next, Replay},
    db,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/events", get(stream))
        .route("/api/bus/stats", get(stats))
}

#[derive(Debug, Deserialize)]
struct StreamQuery {
    execution: Option<String>,
    step: Option<String>,
    last_event_id: Option<String>,
}

async fn stats(State(state): State<AppState>) -> Json<crate::bus::BusStats> {
    Json(state.bus.stats())
}

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

    // Keep-alive comments come from the stream's own timer: axum's KeepAlive re-arms a timer on
    // every event, which with a thousand subscribers is a timer-wheel update per delivery.
    let mut response = Sse::new(events(state, filter, after)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
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

fn events(
    state: AppState,
    filter: Filter,
    after: Option<i64>,
) -> impl Stream<Item = Result<sse::Event, Infallible>> {
    let (mut subscription, replay) = state.bus.subscribe(filter.clone(), after);
    let mut shutdown = state.shutdown.subscribe();
    let live = state.live;
    async_stream::stream! {
        // After a read from Postgres with no upper bound, events flushed between subscribing and
        // reading arrive both ways: live ones up to here were already sent.
        let mut replayed_through = None;
        match replay {
            Replay::Nothing => {}
            Replay::Window(events) => {
                for event in events {
                    yield Ok(numbered(&event));
                }
            }
            Replay::Store { after, before, then } => {
                // Counted first, so a client too far behind costs one index scan, not a read.
                // Boxed (here and below): kept inline, these rarely used futures would enlarge
                // every connection's state for its whole life.
                match Box::pin(db::events::count_after(&state.pool, after, before, live.replay_limit + 1)).await {
                    Ok((count, _)) if count > live.replay_limit => {
                        yield Ok(resync("too far behind to replay", None));
                    }
                    Ok((_, newest)) => {
                        // Page by page up to the newest event counted, so memory is one page
                        // whatever the size, and events flushed meanwhile come live instead.
                        let follow = db::events::Follow {
                            execution: filter.execution,
                            step: filter.step.as_deref(),
                        };
                        let (mut cursor, mut failed) = (after, false);
                        while let Some(through) = newest.filter(|&newest| cursor < newest) {
                            let page = Box::pin(db::events::page_after(&state.pool, cursor, through, follow, live.replay_page)).await;
                            match page {
                                Ok(page) => {
                                    cursor = match page.last() {
                                        Some(last) if page.len() as i64 == live.replay_page => last.seq,
                                        _ => through,
                                    };
                                    for event in &page {
                                        yield Ok(stored(event));
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
                                yield Ok(numbered(&event));
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
                            yield Ok(numbered(&event));
                        }
                    }
                    Next::Lagged(lost) => yield Ok(resync("this connection fell behind", Some(lost))),
                    Next::Closed => break,
                },
                _ = heartbeat.tick() => yield Ok(unnumbered(&EventBody::BusHeartbeat(Heartbeat {
                    interval_ms: live.heartbeat.as_millis() as u64,
                }))),
                _ = keep_alive.tick() => yield Ok(sse::Event::default().comment("")),
                _ = shutdown.changed() => break,
            }
        }
    }
}

fn numbered(event: &Delivered) -> sse::Event {
    sse::Event::default()
        .id(event.seq.to_string())
        .event(event.name())
        .data(event.json())
}

/// A stored event, sent on without decoding its JSON.
fn stored(event: &db::events::StoredText) -> sse::Event {
    sse::Event::default()
        .id(event.seq.to_string())
        .event(&event.name)
        .data(stored_json(event))
}

/// The event as [`Delivered::json`] has it: `seq`, `at`, `event` and `data` in that order and
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
fn unnumbered(body: &EventBody) -> sse::Event {
    #[derive(serde::Serialize)]
    struct Unnumbered<'a> {
        at: chrono::DateTime<Utc>,
        #[serde(flatten)]
        body: &'a EventBody,
    }
    sse::Event::default().event(body.name()).data(
        serde_json::to_string(&Unnumbered {
            at: Utc::now(),
            body,
        })
        .unwrap_or_default(),
    )
}

fn resync(reason: &str, dropped: Option<u64>) -> sse::Event {
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
    use crate::db::events::StoredText;

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
