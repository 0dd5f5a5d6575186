//! `GET /metrics`: OpenMetrics text with the bus, writer, pool, runs and limits; a read like any
//! other (401 without the token when one is set).

use server::http::access::{Policy, Token};
use sqlx::PgPool;

use crate::common;

/// The value of the sample `name` (no labels) in an OpenMetrics text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_count_what_happened(pool: PgPool) {
    let addr = common::serve(common::state(pool, Default::default()).await).await;
    let _stream = common::connect(addr, "", None).await;
    let events: Vec<_> = (0..5)
        .map(|i| common::log_event(&format!("metrics-{i}"), "counted"))
        .collect();
    let (status, _) = common::ingest(addr, serde_json::to_vec(&events).expect("json")).await;
    assert_eq!(status, 200);

    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/openmetrics-text"));
    let text = response.text().await.expect("text");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(sample(&text, "pipescope_events_published_total") >= 5.0);
    // The stream above, and pipescope's own (the live totals fold the stream too).
    assert!(sample(&text, "pipescope_sse_subscribers") >= 1.0);
    // Acknowledged ingest is stored: at least one flush held the five lines.
    assert!(sample(&text, "pipescope_flush_seconds_count") >= 1.0);
    assert!(sample(&text, "pipescope_flush_events_sum") >= 5.0);
    assert_eq!(sample(&text, "pipescope_events_refused_total"), 0.0);
    assert!(sample(&text, "pipescope_db_connections_max") >= 1.0);
    assert_eq!(sample(&text, "pipescope_runs_executing"), 0.0);
    assert_eq!(sample(&text, "pipescope_refused_streams_total"), 0.0);
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_need_a_token_when_one_is_set(pool: PgPool) {
    let token = |text| Token::parse(text).expect("token");
    let policy = Policy::new(
        Some(token("write-token-0123456789abcdef")),
        Some(token("read-token-0123456789abcdef")),
        Vec::new(),
        true,
    )
    .expect("policy");
    let addr = common::serve_with(common::state(pool, Default::default()).await, policy).await;
    let url = format!("http://{addr}/metrics");
    let client = reqwest::Client::new();
    let status = |request: reqwest::RequestBuilder| async move {
        request.send().await.expect("metrics").status().as_u16()
    };
    assert_eq!(status(client.get(&url)).await, 401);
    assert_eq!(
        status(client.get(&url).bearer_auth("read-token-0123456789abcdef")).await,
        200
    );
}
