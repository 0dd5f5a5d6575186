//! `GET /metrics`: OpenMetrics text with the bus, writer, pool, runs, provider requests and
//! limits; a read like any other (401 without the token when one is set).

use std::collections::BTreeMap;

use providers::{ProviderConfig, SimulatedConfig};
use serde_json::json;
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

async fn scrape(addr: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[sqlx::test(migrations = "../migrations")]
async fn provider_requests_and_errors_are_counted_by_provider(pool: PgPool) {
    // `instant` answers at once; `broken` fails part-way through every answer.
    let broken = ProviderConfig::Simulated(SimulatedConfig {
        tokens_per_second: 0.0,
        first_token_ms: 0,
        error_rate: 1.0,
        ..SimulatedConfig::default()
    });
    let configured = BTreeMap::from([("broken".to_owned(), broken)]);
    let state = common::state_with_providers(pool, configured, &|_| None, Vec::new()).await;
    let addr = common::serve(state).await;
    let requests = |p: &str| format!("pipescope_provider_requests_total{{provider=\"{p}\"}}");
    let errors = |p: &str| format!("pipescope_provider_errors_total{{provider=\"{p}\"}}");

    // Every configured provider is there before its first request.
    let before = scrape(addr).await;
    for provider in ["instant", "broken", "simulated"] {
        assert_eq!(sample(&before, &requests(provider)), 0.0, "{before}");
        assert_eq!(sample(&before, &errors(provider)), 0.0, "{before}");
    }

    let yaml = r#"
name: counted
steps:
  - name: first
    provider: instant
    prompt: "one"
  - name: second
    provider: instant
    prompt: "two {{ steps.first.output }}"
  - name: third
    provider: broken
    prompt: "three {{ steps.second.output }}"
    retry: { attempts: 2, backoff_ms: 10 }
"#;
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/executions"))
        .json(&json!({ "yaml": yaml }))
        .send()
        .await
        .expect("start");
    assert_eq!(response.status().as_u16(), 202);
    let started: serde_json::Value = response.json().await.expect("json");
    let execution = started["execution_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("an execution id");
    let detail = common::settled(addr, execution).await;
    assert_eq!(detail["status"], "failed", "{detail}");

    let after = scrape(addr).await;
    assert_eq!(sample(&after, &requests("instant")), 2.0, "{after}");
    assert_eq!(sample(&after, &errors("instant")), 0.0, "{after}");
    // Each attempt of the failing step is a request, and each failed.
    assert_eq!(sample(&after, &requests("broken")), 2.0, "{after}");
    assert_eq!(sample(&after, &errors("broken")), 2.0, "{after}");
    assert_eq!(sample(&after, &requests("simulated")), 0.0, "{after}");
}
