//! Shared by the integration tests: a real pipescope router on a real socket, and a real SSE
//! client.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use std::collections::BTreeMap;

use app::{
    error::AppError,
    models::{DatabaseMode, Event},
};
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use providers::{Price, PriceTable, ProviderConfig, Registry, SimulatedConfig};
use serde_json::{Map, Value};
use server::{
    config::Config,
    state::{AppState, BackboneSettings},
};
use sqlx::PgPool;

pub async fn state(pool: PgPool, settings: BackboneSettings) -> AppState {
    let config = <Config as clap::Parser>::parse_from(["pipescope"]);
    let engine = config.engine().expect("built-in providers");
    state_with_engine(pool, settings, engine).await
}

/// A state whose engine uses the given providers and prices.
pub async fn state_with_engine(
    pool: PgPool,
    settings: BackboneSettings,
    engine: server::engine::EngineConfig,
) -> AppState {
    let config = <Config as clap::Parser>::parse_from(["pipescope"]);
    AppState::start(
        server::leptos_options(&config),
        pool,
        DatabaseMode::External,
        settings,
        engine,
    )
    .await
}

/// A simulated provider that answers at once.
pub fn instant() -> ProviderConfig {
    ProviderConfig::Simulated(SimulatedConfig {
        tokens_per_second: 0.0,
        first_token_ms: 0,
        ..SimulatedConfig::default()
    })
}

/// A state with the built-in providers (keys from `env`), `instant` and whatever `configured`
/// adds, priced by the built-ins plus `prices`.
pub async fn state_with_providers(
    pool: PgPool,
    mut configured: BTreeMap<String, ProviderConfig>,
    env: &dyn Fn(&str) -> Option<String>,
    prices: Vec<Price>,
) -> AppState {
    configured.insert("instant".to_owned(), instant());
    let engine = server::engine::EngineConfig {
        providers: Registry::new(&configured, env).expect("providers"),
        prices: PriceTable::new(prices),
        max_running: server::engine::MAX_RUNNING,
    };
    state_with_engine(pool, BackboneSettings::default(), engine).await
}

/// A JSON object's fields (a test's literal `json!({...})`).
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        other => panic!("not an object: {other}"),
    }
}

/// The message of a refusal.
pub fn refused(result: Result<impl std::fmt::Debug, AppError>) -> String {
    match result {
        Err(AppError::Refused(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Serves `state` on a free loopback port until the test ends.
pub async fn serve(state: AppState) -> SocketAddr {
    serve_with(state, server::http::access::Policy::local()).await
}

/// Serves `state` with the access `policy` on a free loopback port until the test ends.
pub async fn serve_with(state: AppState, policy: server::http::access::Policy) -> SocketAddr {
    serve_limited(state, policy, Default::default()).await
}

/// Serves `state` with `policy` and the limits per client `limits`.
pub async fn serve_limited(
    state: AppState,
    policy: server::http::access::Policy,
    limits: server::http::limits::Limits,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = server::app(state, policy, limits);
    // As pipescope serves (`server::run`), so the tests cover its connection handling too.
    tokio::spawn(server::http::serve::serve(
        listener,
        router,
        std::future::pending(),
    ));
    addr
}

/// One frame of the SSE stream as the wire carried it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: String,
    pub event: String,
    pub data: String,
}

impl Frame {
    pub fn seq(&self) -> i64 {
        self.id.parse().expect("numbered frame")
    }

    pub fn decode(&self) -> Event {
        serde_json::from_str(&self.data).expect("event JSON")
    }
}

pub struct SseClient {
    pub stream: std::pin::Pin<Box<dyn Stream<Item = Frame> + Send>>,
    pub headers: reqwest::header::HeaderMap,
}

pub async fn connect(addr: SocketAddr, query: &str, last_event_id: Option<i64>) -> SseClient {
    let mut request = reqwest::Client::new().get(format!("http://{addr}/api/events{query}"));
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let response = request.send().await.expect("connect");
    assert!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    let headers = response.headers().clone();
    let stream = response.bytes_stream().eventsource().map(|e| {
        let e = e.expect("well-formed SSE");
        Frame {
            id: e.id,
            event: e.event,
            data: e.data,
        }
    });
    SseClient {
        stream: Box::pin(stream),
        headers,
    }
}

impl SseClient {
    /// The next frame that is not a heartbeat or metrics update.
    pub async fn next(&mut self) -> Frame {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("a frame within 10 s")
                .expect("stream open");
            if frame.event != "bus:heartbeat" && frame.event != "metrics:updated" {
                return frame;
            }
        }
    }

    pub async fn take(&mut self, n: usize) -> Vec<Frame> {
        let mut frames = Vec::with_capacity(n);
        for _ in 0..n {
            frames.push(self.next().await);
        }
        frames
    }

    /// Asserts nothing but heartbeats/metrics arrive for `wait`.
    pub async fn assert_quiet(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return,
                Ok(Some(frame))
                    if frame.event == "bus:heartbeat" || frame.event == "metrics:updated" => {}
                Ok(other) => panic!("unexpected frame {other:?}"),
            }
        }
    }
}

pub async fn ingest(addr: SocketAddr, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/ingest/events"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("ingest");
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// An info log line, as pipescope's own code publishes it.
pub fn log(message: &str) -> app::models::EventBody {
    use app::models::{EventBody, LogContext, LogEntry, LogLevel};
    EventBody::LogEntry(LogEntry {
        level: LogLevel::Info,
        message: message.into(),
        timestamp: chrono::Utc::now(),
        context: LogContext::default(),
    })
}

/// A log line event for ingest, with a client id.
pub fn log_event(id: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "event": "log:entry",
        "data": {"level": "info", "message": message, "timestamp": chrono::Utc::now()}
    })
}

/// The frames of one execution, until its final event.
pub async fn run_to_end(client: &mut SseClient, execution: uuid::Uuid) -> Vec<Frame> {
    let mut frames = Vec::new();
    loop {
        let frame = client.next().await;
        let event = frame.decode();
        if event.body.scope().execution_id != Some(execution) {
            continue;
        }
        let done = event.body.is_final();
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

/// The execution once its final state is stored. Live events reach subscribers before the
/// store (that is the point of the live stream), so a test that saw the final event waits for
/// the write, as the dashboard's snapshot reload would.
pub async fn settled(addr: SocketAddr, execution: uuid::Uuid) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = reqwest::get(format!("http://{addr}/api/executions/{execution}"))
            .await
            .expect("detail");
        let status = response.status().as_u16();
        let detail: serde_json::Value = response.json().await.unwrap_or_default();
        let done = status == 200
            && !["running", "paused", "pending"].contains(&detail["status"].as_str().unwrap_or(""))
            && detail["steps"]
                .as_array()
                .is_some_and(|steps| steps.iter().all(|s| s["status"] != "running"));
        if done {
            return detail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not settled: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
