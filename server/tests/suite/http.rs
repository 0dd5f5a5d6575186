//! The router driven directly (no socket), against a fresh migrated database per test.

use crate::common;

use app::models::{DatabaseMode, Health, HealthStatus};
use axum::{
    body::{to_bytes, Body},
    http::{Request, StatusCode},
    Router,
};
use sqlx::PgPool;
use tower::ServiceExt;

async fn router(pool: PgPool) -> Router {
    server::app(
        common::state(pool, Default::default()).await,
        server::http::access::Policy::local(),
        Default::default(),
    )
}

async fn get(router: Router, uri: &str) -> (StatusCode, String) {
    let response = router
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("router answers");
    let status = response.status();
    let body = to_bytes(response.into_body(), 10 << 20)
        .await
        .expect("body");
    (
        status,
        String::from_utf8(body.to_vec()).expect("utf-8 body"),
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn healthz_reports_a_reachable_database(pool: PgPool) {
    let (status, body) = get(router(pool).await, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let health: Health = serde_json::from_str(&body).expect("health JSON");
    assert_eq!(health.status, HealthStatus::Ok);
    assert!(health.database.reachable);
    assert_eq!(health.database.mode, DatabaseMode::External);
    assert!(health.database.latency_ms.is_some_and(|ms| ms >= 0.0));
    assert!(health
        .database
        .server_version
        .is_some_and(|v| v.starts_with(char::is_numeric)));
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(health.running_executions, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn healthz_counts_running_executions(pool: PgPool) {
    // Reported through ingest: engine runs with no live instance would be marked interrupted.
    for status in ["running", "running", "completed", "paused"] {
        sqlx::query(
            "INSERT INTO pipeline_executions (id, pipeline_name, status, source) VALUES (gen_random_uuid(), 'p', $1, 'ingest')",
        )
        .bind(status)
        .execute(&pool)
        .await
        .expect("insert");
    }
    let (_, body) = get(router(pool).await, "/healthz").await;
    let health: Health = serde_json::from_str(&body).expect("health JSON");
    assert_eq!(health.running_executions, 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn healthz_is_503_with_the_reason_when_the_database_is_gone(pool: PgPool) {
    let router = router(pool.clone()).await;
    // Closing marks the pool closed at once: every later acquire fails, as when the database is
    // gone. Not waited for: the relay's LISTEN connection stays checked out for the life of the
    // state, so waiting for every connection to come back hangs whenever the relay got one first.
    let _ = futures::FutureExt::now_or_never(pool.close());
    let (status, body) = get(router, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let health: Health = serde_json::from_str(&body).expect("health JSON");
    assert_eq!(health.status, HealthStatus::Degraded);
    assert!(!health.database.reachable);
    assert!(health.database.error.is_some());
}

#[sqlx::test(migrations = "../migrations")]
async fn the_dashboard_is_server_rendered_complete(pool: PgPool) {
    sqlx::query("INSERT INTO pipeline_executions (id, pipeline_name, status) VALUES (gen_random_uuid(), 'p', 'running')")
        .execute(&pool)
        .await
        .expect("insert");
    let (status, html) = get(router(pool).await, "/").await;
    assert_eq!(status, StatusCode::OK);
    // The first paint already holds the data: no loading placeholders to swap in later.
    for quadrant in ["runs-grid", "step-timeline", "inspector", "metrics"] {
        assert!(
            html.contains(&format!(r#"data-testid="{quadrant}""#)),
            "{quadrant}: {html}"
        );
    }
    assert!(
        html.contains(r#"data-testid="run""#),
        "the run is in the first paint"
    );
    assert!(html.contains(r#"data-testid="db-status""#), "{html}");
    assert!(
        html.contains("/pkg/pipescope.js"),
        "hydration script is linked"
    );
    assert!(
        !html.contains("checking health"),
        "no fallback in the first paint"
    );
    assert!(
        !html.contains(r#"data-testid="no-runs""#),
        "one run is recorded"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn an_unknown_page_is_a_404_with_a_way_back(pool: PgPool) {
    let (status, html) = get(router(pool).await, "/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Back to the dashboard"));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_run_that_does_not_exist_is_a_404_that_says_so(pool: PgPool) {
    let router = router(pool).await;
    let missing = uuid::Uuid::new_v4();
    for (uri, says) in [
        (
            format!("/runs/{missing}"),
            format!("no execution {missing}"),
        ),
        (
            format!("/runs/{missing}/steps/draft"),
            format!("no execution {missing}"),
        ),
        (
            "/runs/not-a-run".to_owned(),
            "no run not-a-run: not a run id".to_owned(),
        ),
    ] {
        let (status, html) = get(router.clone(), &uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(html.contains("No such run"), "{uri}");
        assert!(html.contains(&says), "{uri}: {says}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_state_holds_the_active_runs_the_totals_and_the_limits(pool: PgPool) {
    // Reported through ingest: engine runs with no live instance would be marked interrupted.
    let running = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO pipeline_executions (id, pipeline_name, status, source) VALUES ($1, 'p', 'running', 'ingest'), (gen_random_uuid(), 'p', 'completed', 'ingest')",
    )
    .bind(running)
    .execute(&pool)
    .await
    .expect("insert");
    let limits = server::http::limits::Limits {
        max_streams: 7,
        max_streams_per_client: 3,
        ingest_per_sec: 11,
        runs_per_sec: 5,
        ..Default::default()
    };
    let router = server::app(
        common::state(pool, Default::default()).await,
        server::http::access::Policy::local(),
        limits,
    );
    for uri in ["/api/v1/state", "/api/state"] {
        let (status, body) = get(router.clone(), uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        let state: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let active: Vec<&str> = state["active"]
            .as_array()
            .expect("active")
            .iter()
            .filter_map(|run| run["id"].as_str())
            .collect();
        assert_eq!(active, [running.to_string()], "{state}");
        assert_eq!(state["totals"]["executions"], 2, "{state}");
        assert_eq!(state["totals"]["running"], 1, "{state}");
        assert_eq!(state["executing_here"], 0);
        assert_eq!(
            state["limits"],
            serde_json::json!({
                "max_running": server::engine::MAX_RUNNING,
                "max_streams": 7,
                "max_streams_per_client": 3,
                "ingest_per_sec": 11,
                "runs_per_sec": 5,
            })
        );
        assert_eq!(state["limit_counts"]["refused_run_starts"], 0);
    }
}
