//! `GET /healthz`: for load balancers, service managers and people with curl.

use app::{backend::Backend, models::HealthStatus};
use axum::{extract::State, http::StatusCode, routing::get, Json, Router};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

/// 200 with the health JSON when the database answers, 503 with the same JSON when it does not.
async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<app::models::Health>) {
    let health = state.health().await;
    let code = match health.status {
        HealthStatus::Ok => StatusCode::OK,
        HealthStatus::Degraded => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(health))
}
