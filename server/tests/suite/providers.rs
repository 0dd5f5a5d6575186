//! Every provider client inside the engine, against a local server speaking that provider's
//! real streaming wire format: the events a run emits and the rows it stores, rate limits with
//! retry-after, streams cut mid-way, error bodies, budgets and cancellation.

use crate::common;

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use crate::common::{connect, run_to_end, settled, Frame};
use app::models::EventBody;
use providers::{
    fakes::{FakeServer, Reply},
    PriceTable, ProviderConfig, ProviderKind, Registry, Usage,
};
use serde_json::{json, Value};
use server::{engine::EngineConfig, state::BackboneSettings};
use sqlx::PgPool;
use uuid::Uuid;

const KEY: &str = "sk-test-secret-1234";
const KINDS: [ProviderKind; 3] = [
    ProviderKind::Openai,
    ProviderKind::Anthropic,
    ProviderKind::Gemini,
];

fn instance(kind: ProviderKind) -> String {
    format!("fake-{}", kind.as_str())
}

/// One fake server per wire format, each replying from `replies(kind)`, and pipescope using
/// them as the instances `fake-openai`, `fake-anthropic` and `fake-gemini`.
async fn setup(
    pool: PgPool,
    replies: impl Fn(ProviderKind) -> Vec<Reply>,
) -> (SocketAddr, BTreeMap<String, FakeServer>) {
    let mut fakes = BTreeMap::new();
    let mut configured = BTreeMap::new();
    for kind in KINDS {
        let fake = FakeServer::start(kind, replies(kind)).await;
        let config = fake.http_config(KEY);
        configured.insert(
            instance(kind),
            match kind {
                ProviderKind::Openai => ProviderConfig::Openai(config),
                ProviderKind::Anthropic => ProviderConfig::Anthropic(config),
                _ => ProviderConfig::Gemini(config),
            },
        );
        fakes.insert(instance(kind), fake);
    }
    let engine = EngineConfig {
        providers: Registry::new(&configured, &|_| None).expect("providers"),
        prices: PriceTable::new(Vec::new()),
        max_running: server::engine::MAX_RUNNING,
    };
    let state = common::state_with_engine(pool, BackboneSettings::default(), engine).await;
    (common::serve(state).await, fakes)
}

fn one_step(provider: &str, extra: &str) -> String {
    format!(
        "name: wire\nsteps:\n  - name: ask\n    provider: {provider}\n    model: m-1\n    system: Be brief.\n    prompt: Say hello to {{{{ who }}}}.\n    max_tokens: 100\n{extra}inputs:\n  who: {{ default: the team }}\n"
    )
}

/// Runs `yaml` (a text of pipeline `wire`, saved as its next version when it changed).
async fn start(addr: SocketAddr, yaml: &str) -> Uuid {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/executions"))
        .json(&json!({ "yaml": yaml, "save": true }))
        .send()
        .await
        .expect("start");
    assert_eq!(response.status().as_u16(), 202);
    let answer: Value = response.json().await.expect("json");
    answer["execution_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id")
}

fn chunks(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match f.decode().body {
            EventBody::ResponseStreaming(c) => Some(c.chunk),
            _ => None,
        })
        .collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn each_client_streams_reports_usage_and_stores_the_exchange(pool: PgPool) {
    let (addr, fakes) = setup(pool.clone(), |_| {
        vec![Reply::stream(
            &["Hello", ", ", "team", "!"],
            Usage {
                prompt_tokens: 17,
                completion_tokens: 4,
            },
        )
        .with_chunk_delay(Duration::from_millis(20))]
    })
    .await;
    let mut client = connect(addr, "", None).await;
    for kind in KINDS {
        let name = instance(kind);
        let execution = start(addr, &one_step(&name, "")).await;
        let frames = run_to_end(&mut client, execution).await;
        assert_eq!(chunks(&frames), ["Hello", ", ", "team", "!"], "{name}");
        let received = frames
            .iter()
            .find_map(|f| match f.decode().body {
                EventBody::ResponseReceived(r) => Some(r),
                _ => None,
            })
            .expect("response:received");
        assert_eq!(received.response, "Hello, team!");
        assert_eq!(
            (
                received.usage.prompt_tokens,
                received.usage.completion_tokens,
                received.usage.total_tokens
            ),
            (17, 4, 21),
            "{name}: usage as the provider reported it"
        );
        assert!(
            received.ttft_ms.is_some_and(|t| t >= 15),
            "{name}: {:?}",
            received.ttft_ms
        );

        let detail = settled(addr, execution).await;
        assert_eq!(detail["status"], "completed", "{name}");
        let step = &detail["steps"][0];
        assert_eq!(step["response"], "Hello, team!");
        assert_eq!(step["prompt"], "Say hello to the team.");
        assert_eq!(step["system_prompt"], "Be brief.");
        assert_eq!(
            (
                step["prompt_tokens"].as_i64(),
                step["completion_tokens"].as_i64()
            ),
            (Some(17), Some(4))
        );
        assert_eq!(step["provider"], name.as_str());

        // The request the provider got: model, system, prompt, the key in the provider's header.
        let request = fakes[&name].requests().pop().expect("a request");
        let body = request.body.to_string();
        assert!(body.contains("Say hello to the team."), "{name}: {body}");
        assert!(body.contains("Be brief."), "{name}: {body}");
        let key_header = match kind {
            ProviderKind::Openai => request
                .header("authorization")
                .map(|h| h.replace("Bearer ", "")),
            ProviderKind::Anthropic => request.header("x-api-key").map(str::to_owned),
            _ => request.header("x-goog-api-key").map(str::to_owned),
        };
        assert_eq!(key_header.as_deref(), Some(KEY), "{name}");
    }
    // The key never reaches the event log or the rows.
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM events WHERE payload::text LIKE '%' || $1 || '%')
              + (SELECT count(*) FROM step_executions WHERE row_to_json(step_executions)::text LIKE '%' || $1 || '%')",
    )
    .bind(KEY)
    .fetch_one(&pool)
    .await
    .expect("query");
    assert_eq!(leaked, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rate_limit_is_retried_after_the_time_the_provider_asks_for(pool: PgPool) {
    let (addr, fakes) = setup(pool, |_| {
        vec![
            Reply::error(429, "slow down").with_retry_after("1"),
            Reply::stream(
                &["ok"],
                Usage {
                    prompt_tokens: 5,
                    completion_tokens: 1,
                },
            ),
        ]
    })
    .await;
    let mut client = connect(addr, "", None).await;
    for kind in KINDS {
        let name = instance(kind);
        let retry = "    retry: { attempts: 3, backoff_ms: 50 }\n";
        let execution = start(addr, &one_step(&name, retry)).await;
        let frames = run_to_end(&mut client, execution).await;
        let warning = frames
            .iter()
            .find_map(|f| match f.decode().body {
                EventBody::LogEntry(l) if l.message.contains("retrying") => Some(l.message),
                _ => None,
            })
            .expect("a retry warning");
        assert!(warning.contains("retrying in 1000 ms"), "{name}: {warning}");
        let detail = settled(addr, execution).await;
        assert_eq!(detail["status"], "completed", "{name}");
        let steps = detail["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), 2, "{name}: two attempts");
        assert_eq!(steps[0]["status"], "failed");
        let error = steps[0]["error"].as_str().expect("error");
        assert!(
            error.contains("429") && error.contains("slow down"),
            "{name}: {error}"
        );
        assert_eq!(
            (steps[1]["attempt"].as_i64(), steps[1]["status"].as_str()),
            (Some(2), Some("completed"))
        );
        let first: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(steps[0]["completed_at"].clone()).expect("time");
        let second: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(steps[1]["started_at"].clone()).expect("time");
        assert!(
            second - first >= chrono::Duration::milliseconds(950),
            "{name}: waited {:?}",
            second - first
        );
        assert_eq!(fakes[&name].requests().len(), 2);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stream_cut_mid_way_is_retried_and_an_error_body_fails_the_step(pool: PgPool) {
    let (addr, fakes) = setup(pool, |_| {
        vec![
            Reply::Disconnect { after_chunks: 2 },
            Reply::stream(
                &["fine"],
                Usage {
                    prompt_tokens: 5,
                    completion_tokens: 1,
                },
            ),
            Reply::error(404, "model `m-1` does not exist"),
        ]
    })
    .await;
    let mut client = connect(addr, "", None).await;
    for kind in KINDS {
        let name = instance(kind);
        let retry = "    retry: { attempts: 3, backoff_ms: 10 }\n";
        let execution = start(addr, &one_step(&name, retry)).await;
        run_to_end(&mut client, execution).await;
        let detail = settled(addr, execution).await;
        assert_eq!(detail["status"], "completed", "{name}");
        let error = detail["steps"][0]["error"]
            .as_str()
            .expect("error")
            .to_owned();
        assert!(error.contains("stream ended before"), "{name}: {error}");
        assert_eq!(detail["steps"][1]["response"], "fine");

        // A request the provider refuses is not retried: retrying cannot fix it.
        let execution = start(addr, &one_step(&name, retry)).await;
        let frames = run_to_end(&mut client, execution).await;
        match frames.last().map(|f| f.decode().body) {
            Some(EventBody::PipelineError(e)) => {
                assert!(e.error.contains("does not exist"), "{name}: {}", e.error);
                assert_eq!(e.step.as_deref(), Some("ask"));
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(
            settled(addr, execution).await["steps"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        assert_eq!(fakes[&name].requests().len(), 3, "{name}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_provider_that_overruns_the_budget_is_cut_off_and_cancel_closes_the_request(
    pool: PgPool,
) {
    let words: Vec<String> = (0..300).map(|i| format!(" word{i}")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let (addr, fakes) = setup(pool, |_| {
        vec![
            Reply::stream(
                &words,
                Usage {
                    prompt_tokens: 10,
                    completion_tokens: 600,
                },
            ),
            Reply::Stall { after_chunks: 1 },
        ]
    })
    .await;
    let mut client = connect(addr, "", None).await;
    for kind in KINDS {
        let name = instance(kind);
        let budget = "    token_budget: 60\n    retry: { attempts: 1 }\n";
        let execution = start(addr, &one_step(&name, budget)).await;
        let frames = run_to_end(&mut client, execution).await;
        assert!(
            chunks(&frames).len() < 100,
            "{name}: the stream was stopped early"
        );
        let detail = settled(addr, execution).await;
        let error = detail["steps"][0]["error"]
            .as_str()
            .expect("error")
            .to_owned();
        assert!(error.contains("token_budget of 60"), "{name}: {error}");

        // Cancel while the provider is mid-stream: the HTTP request is closed at once.
        let execution = start(addr, &one_step(&name, "")).await;
        loop {
            let frame = client.next().await;
            if frame.event == "response:streaming"
                && frame.decode().body.scope().execution_id == Some(execution)
            {
                break;
            }
        }
        assert_eq!(fakes[&name].open_streams(), 1, "{name}");
        let response = reqwest::Client::new()
            .post(format!("http://{addr}/api/executions/{execution}/cancel"))
            .send()
            .await
            .expect("cancel");
        assert_eq!(response.status().as_u16(), 200);
        run_to_end(&mut client, execution).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while fakes[&name].open_streams() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: the request stayed open"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(settled(addr, execution).await["status"], "cancelled");
    }
}

/// A model's output may hold a NUL, which the store cannot hold: the engine streams, hands on
/// and stores the same text with U+FFFD in its place, says so in the run's log, and the run
/// completes.
#[sqlx::test(migrations = "../migrations")]
async fn a_nul_in_a_models_output_is_replaced_and_the_run_completes(pool: PgPool) {
    let (addr, _fakes) = setup(pool.clone(), |_| {
        vec![Reply::stream(
            &["a\u{0}b", "c"],
            Usage {
                prompt_tokens: 3,
                completion_tokens: 2,
            },
        )]
    })
    .await;
    let mut client = connect(addr, "", None).await;
    for kind in KINDS {
        let name = instance(kind);
        let execution = start(addr, &one_step(&name, "")).await;
        let frames = run_to_end(&mut client, execution).await;
        assert_eq!(chunks(&frames).concat(), "a\u{FFFD}bc", "{name}");

        let detail = settled(addr, execution).await;
        assert_eq!(detail["status"], "completed", "{name}: {detail}");
        assert_eq!(detail["steps"][0]["response"], "a\u{FFFD}bc", "{name}");
        let warned: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM log_entries
             WHERE execution_id = $1 AND level = 'warn' AND message LIKE '%NUL%'",
        )
        .bind(execution)
        .fetch_one(&pool)
        .await
        .expect("count");
        assert_eq!(warned, 1, "{name}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_run_started_with_a_nul_in_its_inputs_is_refused_saying_where(pool: PgPool) {
    let (addr, _fakes) = setup(pool.clone(), |_| Vec::new()).await;
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/executions"))
        .json(&json!({ "yaml": one_step("fake-openai", ""), "inputs": {"who": "x\u{0}y"} }))
        .send()
        .await
        .expect("start");
    assert_eq!(response.status().as_u16(), 422);
    let answer: Value = response.json().await.expect("json");
    let message = answer["error"].as_str().unwrap_or("");
    assert!(
        message.contains("inputs.who") && message.contains("NUL"),
        "{message}"
    );
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM pipeline_executions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(runs, 0);
}
