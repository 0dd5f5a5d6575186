//! `GET /healthz`: for load balancers, service managers and people with curl.

use app::{backend::Backend, models::HealthStatus};
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Extension, Json, Router,
};

use std::sync::Arc;

use serde::Serialize;

use super::{
    access::Caller,
    limits::{LimitStats, Limiter},
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

/// 200 with the health JSON when the database answers, 503 with the same JSON when it does not.
/// It needs no token; without a valid one (when one is set) it says only up or down, as
/// `{"status": "ok" | "degraded"}`: versions, counts and timings are for those who may watch.
async fn healthz(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    limiter: Option<Extension<Arc<Limiter>>>,
) -> Response {
    let health = state.health().await;
    let code = match health.status {
        HealthStatus::Ok => StatusCode::OK,
        HealthStatus::Degraded => StatusCode::SERVICE_UNAVAILABLE,
    };
    let may_watch = caller.is_none_or(|Extension(Caller(role))| role.is_some());
    if may_watch {
        let limits = limiter.map(|Extension(limiter)| limiter.stats());
        let waiting = state.bus.writer().waits().current();
        (
            code,
            Json(Report {
                health,
                waiting,
                limits,
            }),
        )
            .into_response()
    } else {
        (code, Json(serde_json::json!({ "status": health.status }))).into_response()
    }
}

/// The page's health and, for operators, what waits for the database and what the limits per
/// client refused.
#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    health: app::models::Health,
    /// Numbering or writing events waiting out a database fault: what, since when, why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    waiting: Vec<crate::bus::faults::Wait>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<LimitStats>,
}
