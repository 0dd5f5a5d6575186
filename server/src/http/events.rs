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
                // Boxed: kept inline, this rarely used future would enlarge every connection's
                // state for its whole life.
                match Box::pin(db::events::read_after(&state.pool, after, before, live.replay_limit + 1)).await {
                    Ok(stored) if stored.len() as i64 <= live.replay_limit => {
                        if before.is_none() {
                            replayed_through = stored.last().map(|e| e.seq);
                        }
                        for event in stored.into_iter().filter(|e| filter.matches(e)) {
                            yield Ok(numbered(&Delivered::new(event)));
                        }
                        for event in then {
                            yield Ok(numbered(&event));
                        }
                    }
                    Ok(_) => yield Ok(resync("too far behind to replay", None)),
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
