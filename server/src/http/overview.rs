//! `GET /api/v1/state`: what is happening now, in one answer, for a program that polls rather
//! than following the event stream: the active runs, the store's totals, the latest metrics, and
//! the limits in force with what they have refused.

use std::sync::Arc;

use app::models::{MetricsSample, RunSummary, StoreTotals};
use axum::{extract::State, Extension, Json};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::ApiError,
    limits::{LimitStats, Limiter},
};
use crate::{db, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(current))
}

/// The state of pipescope at one point of the event stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentState {
    /// The last event reflected here (`null` before the first): subscribe to `/api/v1/events`
    /// with it as `Last-Event-ID` to follow on from exactly this state.
    pub seq: Option<i64>,
    pub taken_at: DateTime<Utc>,
    /// Pending, running and paused runs (of every instance on the database), newest first.
    pub active: Vec<RunSummary>,
    pub totals: StoreTotals,
    /// The latest live metrics: tokens, cost, error rate, latency percentiles, throughput
    /// (`null` before the first).
    pub metrics: Option<MetricsSample>,
    /// Runs executing on this instance.
    pub executing_here: usize,
    pub limits: LimitSettings,
    /// Streams open now and the requests the limits refused since this instance started.
    pub limit_counts: LimitStats,
}

/// The limits this instance enforces (its flags).
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitSettings {
    /// Runs executing at once (`--max-running`); a start beyond is refused with 429.
    pub max_running: usize,
    /// Live event streams open at once, all clients together (`--max-streams`).
    pub max_streams: u32,
    /// Live event streams one client may hold (`--max-streams-per-client`).
    pub max_streams_per_client: u32,
    /// Ingest requests a second per client (`--ingest-rate`), bursts of twice that.
    pub ingest_per_sec: u32,
    /// Requests that start runs a second per client (`--run-rate`), bursts of twice that.
    pub runs_per_sec: u32,
}

#[utoipa::path(
    get,
    path = "/state",
    tag = "state",
    summary = "The active runs, totals, latest metrics and the limits, in one answer",
    responses(
        (status = 200, description = "The state now", body = CurrentState),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn current(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<Limiter>>,
) -> Result<Json<CurrentState>, ApiError> {
    let snapshot = db::queries::snapshot(&state.pool)
        .await
        .map_err(|e| ApiError::internal("the store could not be read", e))?;
    let limits = limiter.limits();
    Ok(Json(CurrentState {
        seq: snapshot.seq,
        taken_at: snapshot.taken_at,
        active: snapshot.active,
        totals: snapshot.totals,
        metrics: snapshot.metrics.last().cloned(),
        executing_here: state.engine.running(),
        limits: LimitSettings {
            max_running: state.engine.max_running(),
            max_streams: limits.max_streams,
            max_streams_per_client: limits.max_streams_per_client,
            ingest_per_sec: limits.ingest_per_sec,
            runs_per_sec: limits.runs_per_sec,
        },
        limit_counts: limiter.stats(),
    }))
}
