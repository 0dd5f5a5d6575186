//! `GET /metrics`: pipescope's own health for Prometheus (OpenMetrics text): the event bus
//! (published, relayed, dropped, subscribers, the replay window), the writer (flush latency and
//! batch sizes, refused events), the database pool, runs executing, requests to each provider
//! and their errors, and the limits per client.
//! Values are read when scraped; nothing is kept for it but the writer's histograms. Needs the
//! read token when one is set, like every other read.

use std::sync::Arc;

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
    Extension, Router,
};
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::limits::Limiter;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(
    State(state): State<AppState>,
    limiter: Option<Extension<Arc<Limiter>>>,
) -> Response {
    let mut registry = Registry::with_prefix("pipescope");
    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let metric = Counter::<u64>::default();
        metric.inc_by(value);
        registry.register(name, help, metric);
    };
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: i64| {
        let metric = Gauge::<i64>::default();
        metric.set(value);
        registry.register(name, help, metric);
    };
    let bus = state.bus.stats();
    counter(
        &mut registry,
        "events_published",
        "Events published on this instance",
        bus.published,
    );
    counter(
        &mut registry,
        "events_relayed",
        "Events relayed from other instances",
        bus.relayed,
    );
    counter(
        &mut registry,
        "events_dropped",
        "Events live-stream clients lost by falling behind (each was told to resync)",
        bus.dropped_total,
    );
    gauge(
        &mut registry,
        "sse_subscribers",
        "Live event subscribers: open streams and pipescope's own (the live totals)",
        bus.subscribers as i64,
    );
    gauge(
        &mut registry,
        "replay_window_events",
        "Recent events kept in memory for resuming clients",
        bus.window_len as i64,
    );
    let flushes = state.bus.writer().flush_metrics();
    registry.register(
        "flush_seconds",
        "Time to write one batch of events to PostgreSQL",
        flushes.seconds,
    );
    registry.register(
        "flush_events",
        "Events in one batch written to PostgreSQL",
        flushes.events,
    );
    counter(
        &mut registry,
        "events_refused",
        "Events PostgreSQL refused to store (the batch's other events were stored)",
        flushes.refused,
    );
    let waited = state
        .bus
        .writer()
        .waits()
        .current()
        .iter()
        .map(|wait| (chrono::Utc::now() - wait.since).num_seconds())
        .max()
        .unwrap_or(0);
    gauge(
        &mut registry,
        "store_waiting_seconds",
        "How long numbering or writing events has waited out a database fault (0: no wait)",
        waited,
    );
    let pool = &state.pool;
    gauge(
        &mut registry,
        "db_connections",
        "Connections the pool holds",
        i64::from(pool.size()),
    );
    gauge(
        &mut registry,
        "db_connections_idle",
        "Connections the pool holds that are idle",
        pool.num_idle() as i64,
    );
    gauge(
        &mut registry,
        "db_connections_max",
        "Most connections the pool opens",
        i64::from(pool.options().get_max_connections()),
    );
    gauge(
        &mut registry,
        "runs_executing",
        "Runs executing on this instance",
        state.engine.running() as i64,
    );
    // Labelled by the provider instance's name, as pipelines and the config file name it.
    let requests = Family::<[(&str, String); 1], Counter>::default();
    let errors = Family::<[(&str, String); 1], Counter>::default();
    for (provider, counts) in state.engine.provider_calls() {
        let labels = [("provider", provider)];
        requests.get_or_create(&labels).inc_by(counts.requests);
        errors.get_or_create(&labels).inc_by(counts.errors);
    }
    registry.register(
        "provider_requests",
        "Requests sent to each provider (every attempt of a step, and connection tests)",
        requests,
    );
    registry.register(
        "provider_errors",
        "Requests to each provider that ended in an error or timed out",
        errors,
    );
    if let Some(Extension(limiter)) = limiter {
        let limits = limiter.stats();
        counter(
            &mut registry,
            "refused_streams",
            "Live streams refused by the limits per client (429)",
            limits.refused_streams,
        );
        counter(
            &mut registry,
            "refused_ingest",
            "Ingest requests refused by the limits per client (429)",
            limits.refused_ingest,
        );
        counter(
            &mut registry,
            "refused_run_starts",
            "Run starts refused by the limits (429)",
            limits.refused_run_starts,
        );
    }
    let mut text = String::new();
    match encode(&mut text, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            super::error::ApiError::internal("cannot encode the metrics", error).into_response()
        }
    }
}
