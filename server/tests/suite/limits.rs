//! Limits per client: event streams, ingest and run-start rates, runs executing at once. Over a
//! limit is a 429 with `Retry-After` and a message naming the flag; refusals show in /healthz;
//! another client is not affected.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use providers::{PriceTable, ProviderConfig, Registry, SimulatedConfig};
use serde_json::{json, Value};
use server::{
    engine::EngineConfig,
    http::{access::Policy, limits::Limits},
    state::BackboneSettings,
};
use sqlx::PgPool;

use crate::common;

async fn serve(pool: PgPool, limits: Limits, max_running: usize) -> SocketAddr {
    let mut configured = BTreeMap::new();
    configured.insert("instant".to_owned(), common::instant());
    // Never finishes: a run on it executes until it is cancelled.
    configured.insert(
        "stalls".to_owned(),
        ProviderConfig::Simulated(SimulatedConfig {
            stall_rate: 1.0,
            ..SimulatedConfig::default()
        }),
    );
    let engine = EngineConfig {
        providers: Registry::new(&configured, &|_| None).expect("providers"),
        prices: PriceTable::new(Vec::new()),
        max_running,
    };
    let state = common::state_with_engine(pool, BackboneSettings::default(), engine).await;
    common::serve_limited(state, Policy::local(), limits).await
}

async fn post(addr: SocketAddr, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .json(body)
        .send()
        .await
        .expect("request")
}

/// A 429's `Retry-After` in seconds and its message.
async fn too_many(response: reqwest::Response) -> (u64, String) {
    assert_eq!(response.status().as_u16(), 429);
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    let body: Value = response.json().await.expect("JSON error");
    (
        retry_after,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn limit_stats(addr: SocketAddr) -> Value {
    let health: Value = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("healthz")
        .json()
        .await
        .expect("JSON");
    health["limits"].clone()
}

fn run_on(provider: &str) -> Value {
    json!({
        "yaml": format!(
            "name: limits-{provider}\ndefaults: {{ provider: {provider}, model: sim-small }}\nsteps:\n  - name: only\n    prompt: \"Hello\"\n"
        ),
    })
}

#[sqlx::test(migrations = "../migrations")]
async fn streams_beyond_a_clients_share_are_refused_until_one_closes(pool: PgPool) {
    let limits = Limits {
        max_streams_per_client: 2,
        ..Limits::default()
    };
    let addr = serve(pool, limits, 10).await;
    let first = common::connect(addr, "", None).await;
    let _second = common::connect(addr, "", None).await;
    let refused = reqwest::get(format!("http://{addr}/api/events"))
        .await
        .expect("third");
    let (retry_after, message) = too_many(refused).await;
    assert!(retry_after >= 1);
    assert!(message.contains("--max-streams-per-client"), "{message}");
    let stats = limit_stats(addr).await;
    assert_eq!(stats["refused_streams"], 1, "{stats}");
    assert_eq!(stats["streams_open"], 2, "{stats}");

    // Closing one gives its place back (once the server sees the connection go).
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let response = reqwest::get(format!("http://{addr}/api/events"))
            .await
            .expect("again");
        if response.status().is_success() {
            break;
        }
        assert_eq!(response.status().as_u16(), 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn ingest_beyond_a_clients_rate_gets_429_with_retry_after(pool: PgPool) {
    let limits = Limits {
        ingest_per_sec: 1,
        ..Limits::default()
    };
    let addr = serve(pool, limits, 10).await;
    // 20 at once: a burst of 2 and 1 more a second are let in, however slow the machine.
    let started = tokio::time::Instant::now();
    let responses = futures::future::join_all((0..20).map(|_| async move {
        reqwest::Client::new()
            .post(format!("http://{addr}/api/ingest/events"))
            .header("content-type", "application/json")
            .body("[]")
            .send()
            .await
            .expect("ingest")
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut refused = 0;
    for response in responses {
        if response.status().as_u16() == 429 {
            let (retry_after, message) = too_many(response).await;
            assert!((1..=2).contains(&retry_after), "{retry_after}");
            assert!(message.contains("--ingest-rate"), "{message}");
            refused += 1;
        }
    }
    let allowed = 2.0 + elapsed.ceil();
    assert!(
        f64::from(20 - refused) <= allowed,
        "{} accepted in {elapsed:.1} s, at most {allowed} allowed",
        20 - refused
    );
    assert_eq!(limit_stats(addr).await["refused_ingest"], refused);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_run_beyond_max_running_is_refused_and_a_batch_waits_instead(pool: PgPool) {
    let addr = serve(pool, Limits::default(), 1).await;
    let executing = post(addr, "/api/executions", &run_on("stalls")).await;
    assert_eq!(executing.status().as_u16(), 202);
    let executing: Value = executing.json().await.expect("started");
    let id = executing["execution_id"].as_str().expect("id").to_owned();

    let (retry_after, message) =
        too_many(post(addr, "/api/executions", &run_on("instant")).await).await;
    assert_eq!(retry_after, 5);
    assert!(message.contains("--max-running"), "{message}");
    assert_eq!(limit_stats(addr).await["refused_run_starts"], 1);

    // A batch is accepted: its runs wait for the place rather than failing.
    let batch = post(
        addr,
        "/api/batches",
        &json!({
            "yaml": run_on("instant")["yaml"],
            "inputs": [{}, {}, {}],
            "concurrency": 3,
        }),
    )
    .await;
    assert_eq!(batch.status().as_u16(), 202);
    let batch: Value = batch.json().await.expect("batch");
    let runs: Vec<String> = batch["execution_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect();

    let cancelled = post(addr, &format!("/api/executions/{id}/cancel"), &json!({})).await;
    assert!(cancelled.status().is_success());
    // However slow the machine: each queued run starts once the place is free and completes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for run in runs {
        loop {
            let detail: Value = reqwest::get(format!("http://{addr}/api/executions/{run}"))
                .await
                .expect("detail")
                .json()
                .await
                .unwrap_or_default();
            if detail["status"] == "completed" {
                break;
            }
            assert!(
                !["failed", "cancelled"].contains(&detail["status"].as_str().unwrap_or("")),
                "{detail}"
            );
            assert!(tokio::time::Instant::now() < deadline, "{detail}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
