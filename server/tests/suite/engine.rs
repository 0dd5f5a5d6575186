//! The pipeline engine through its public API: runs, their events on the live stream and their
//! rows in Postgres; pause, resume, cancel, retry, replay, batches, limits and restart safety.

use crate::common;

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use crate::common::{connect, run_to_end, settled, Frame, SseClient};
use providers::{PriceTable, ProviderConfig, Registry, SimulatedConfig};
use serde_json::{json, Value};
use server::{engine::EngineConfig, state::BackboneSettings};
use sqlx::PgPool;
use uuid::Uuid;

/// Providers for the tests: `instant` streams with no delay (so its chunks arrive together),
/// `fast` token by token, `slow` at a pace a test can act during, `stalls` never finishes.
fn providers(extra: Vec<(&str, ProviderConfig)>) -> EngineConfig {
    let simulated = |tokens_per_second: f64, first_token_ms: u64| SimulatedConfig {
        tokens_per_second,
        first_token_ms,
        ..SimulatedConfig::default()
    };
    let mut configured = BTreeMap::new();
    configured.insert(
        "instant".to_owned(),
        ProviderConfig::Simulated(simulated(0.0, 0)),
    );
    configured.insert(
        "fast".to_owned(),
        ProviderConfig::Simulated(simulated(500.0, 0)),
    );
    configured.insert(
        "slow".to_owned(),
        ProviderConfig::Simulated(simulated(40.0, 50)),
    );
    configured.insert(
        "stalls".to_owned(),
        ProviderConfig::Simulated(SimulatedConfig {
            stall_rate: 1.0,
            ..simulated(200.0, 0)
        }),
    );
    for (name, config) in extra {
        configured.insert(name.to_owned(), config);
    }
    EngineConfig {
        providers: Registry::new(&configured, &|_| None).expect("test providers"),
        prices: PriceTable::new(Vec::new()),
        max_running: server::engine::MAX_RUNNING,
    }
}

async fn serve(pool: PgPool, engine: EngineConfig) -> SocketAddr {
    let state = common::state_with_engine(pool, BackboneSettings::default(), engine).await;
    common::serve(state).await
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("http://{addr}{path}"))
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn start(addr: SocketAddr, body: Value) -> Uuid {
    let (status, answer) = post(addr, "/api/executions", body).await;
    assert_eq!(status, 202, "{answer}");
    answer["execution_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("execution id")
}

/// Waits for the first frame of `execution` named `name`.
async fn wait_for(client: &mut SseClient, execution: Uuid, name: &str) -> Frame {
    loop {
        let frame = client.next().await;
        if frame.event == name && frame.decode().body.scope().execution_id == Some(execution) {
            return frame;
        }
    }
}

fn names(frames: &[Frame]) -> Vec<&str> {
    frames.iter().map(|f| f.event.as_str()).collect()
}

const CHAIN: &str = r#"
name: chain
defaults: { provider: instant, model: sim-small, max_tokens: 60 }
inputs:
  topic: { default: "event sourcing" }
steps:
  - name: outline
    prompt: "Outline {{ topic }}."
  - name: draft
    system: "You write briefs."
    prompt: "Expand: {{ steps.outline.output }}"
  - name: critique
    prompt: "Critique: {{ steps.draft.output }}"
"#;

async fn detail(addr: SocketAddr, execution: Uuid) -> Value {
    let (status, detail) = get(addr, &format!("/api/executions/{execution}")).await;
    assert_eq!(status, 200, "{detail}");
    detail
}

#[sqlx::test(migrations = "../migrations")]
async fn a_run_streams_every_step_and_stores_prompts_responses_and_costs(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let execution = start(
        addr,
        json!({"yaml": CHAIN, "inputs": {"topic": "CRDTs"}, "provider": "fast", "model": "gpt-4o-mini"}),
    )
    .await;
    let frames = run_to_end(&mut client, execution).await;
    let names = names(&frames);
    assert_eq!(names.first(), Some(&"pipeline:started"));
    assert_eq!(names.last(), Some(&"pipeline:completed"));

    // Each step in order: started, prompt sent, chunks, response, completed.
    for step in ["outline", "draft", "critique"] {
        let of_step: Vec<_> = frames
            .iter()
            .filter(|f| f.decode().body.scope().step == Some(step))
            .map(|f| f.event.as_str())
            .filter(|n| *n != "step:progress")
            .collect();
        assert_eq!(of_step[..2], ["step:started", "prompt:sent"], "{step}");
        assert_eq!(
            of_step[of_step.len() - 2..],
            ["response:received", "step:completed"],
            "{step}"
        );
        assert!(
            of_step[2..of_step.len() - 2]
                .iter()
                .all(|n| *n == "response:streaming"),
            "{step}: {of_step:?}"
        );
        assert!(of_step.len() > 6, "{step} streamed in chunks");
    }

    // Chunks add up to the response.
    let chunks: String = frames
        .iter()
        .filter(|f| f.event == "response:streaming")
        .map(|f| f.decode())
        .filter(|e| e.body.scope().step == Some("outline"))
        .map(|e| match e.body {
            app::models::EventBody::ResponseStreaming(c) => c.chunk,
            _ => String::new(),
        })
        .collect();

    let detail = settled(addr, execution).await;
    assert_eq!(detail["status"], "completed");
    assert_eq!(detail["pipeline"], "chain");
    assert_eq!(detail["inputs"]["topic"], "CRDTs");
    let steps = detail["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3);
    let outline = &steps[0];
    assert_eq!(outline["step"], "outline");
    assert_eq!(outline["prompt"], "Outline CRDTs.");
    assert_eq!(outline["template"], "Outline {{ topic }}.");
    assert_eq!(outline["variables"]["topic"], "CRDTs");
    assert_eq!(outline["response"], chunks.as_str());
    assert_eq!(outline["model"], "gpt-4o-mini");
    assert!(outline["prompt_tokens"].as_i64() > Some(0));
    assert!(outline["completion_tokens"].as_i64() > Some(0));
    assert!(
        outline["cost_usd"].as_f64() > Some(0.0),
        "priced like gpt-4o-mini"
    );
    assert!(outline["ttft_ms"].is_i64());
    let draft = &steps[1];
    assert_eq!(draft["system_prompt"], "You write briefs.");
    assert_eq!(
        draft["prompt"],
        format!("Expand: {}", outline["response"].as_str().expect("text"))
    );
    assert_eq!(
        draft["variables"]["steps.outline.output"],
        outline["response"]
    );
    assert_eq!(detail["results"]["critique"], steps[2]["response"]);
    let total: i64 = steps
        .iter()
        .map(|s| s["total_tokens"].as_i64().expect("tokens"))
        .sum();
    assert_eq!(detail["total_tokens"], total);

    // The text export has every attempt's system prompt, prompt and response, in order.
    let response = reqwest::get(format!(
        "http://{addr}/api/executions/{execution}/transcript"
    ))
    .await
    .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let text = response.text().await.expect("text");
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing in\n{text}"))
    };
    assert!(at("== outline ==") < at("-- prompt --\nOutline CRDTs.\n"));
    assert!(at("== draft ==") < at("-- system --\nYou write briefs.\n"));
    assert!(at("== critique ==") > at(draft["response"].as_str().expect("text")));
}

#[sqlx::test(migrations = "../migrations")]
async fn independent_steps_run_concurrently_within_the_limit(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let yaml = r#"
name: fan-out
defaults: { provider: slow, max_tokens: 12 }
max_parallel: 2
steps:
  - { name: a, prompt: "one" }
  - { name: b, prompt: "two" }
  - { name: c, prompt: "three" }
  - { name: join, prompt: "{{ steps.a.output }} {{ steps.b.output }} {{ steps.c.output }}" }
"#;
    let execution = start(addr, json!({ "yaml": yaml })).await;
    let frames = run_to_end(&mut client, execution).await;
    let mut running = 0;
    let mut most = 0;
    let mut started = Vec::new();
    for frame in &frames {
        match frame.event.as_str() {
            "step:started" => {
                running += 1;
                most = most.max(running);
                started.push(frame.decode().body.scope().step.map(str::to_owned));
            }
            "step:completed" => running -= 1,
            _ => {}
        }
    }
    assert_eq!(most, 2, "two at a time, never three");
    assert_eq!(
        started.last(),
        Some(&Some("join".to_owned())),
        "join waits for all"
    );
    assert_eq!(
        frames.last().map(|f| f.event.as_str()),
        Some("pipeline:completed")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_step_read_mid_stream_has_its_response_so_far(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let yaml = r#"
name: paced
steps:
  - { name: only, prompt: "go", provider: slow, max_tokens: 40 }
"#;
    let execution = start(addr, json!({ "yaml": yaml })).await;
    // Chunks are not stored: the detail of a streaming step carries its text so far, and the seq
    // of the last chunk in it, so a page opened now continues exactly where that text ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (partial, through) = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the detail never showed the streaming response"
        );
        let detail = detail(addr, execution).await;
        let step = &detail["steps"][0];
        if let (Some(text), Some(seq)) =
            (step["response"].as_str(), step["streamed_through"].as_i64())
        {
            if text.len() > 10 {
                assert_eq!(step["status"], "running");
                break (text.to_owned(), seq);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (mut before, mut after) = (String::new(), String::new());
    let complete = loop {
        let frame = client.next().await;
        match frame.decode().body {
            app::models::EventBody::ResponseStreaming(c) if frame.seq() <= through => {
                before.push_str(&c.chunk)
            }
            app::models::EventBody::ResponseStreaming(c) => after.push_str(&c.chunk),
            app::models::EventBody::ResponseReceived(r) => break r.response,
            _ => {}
        }
    };
    assert_eq!(before, partial);
    assert!(!after.is_empty(), "the step was still streaming");
    assert_eq!(format!("{partial}{after}"), complete);

    // Once complete, the stored response is all there is.
    let detail = settled(addr, execution).await;
    assert_eq!(detail["steps"][0]["response"], complete.as_str());
    assert!(detail["steps"][0].get("streamed_through").is_none());
}

#[sqlx::test(migrations = "../migrations")]
async fn pause_waits_for_the_running_step_and_resume_continues(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let yaml = r#"
name: paced
defaults: { provider: slow, max_tokens: 20 }
steps:
  - { name: first, prompt: "one" }
  - { name: second, prompt: "two {{ steps.first.output }}" }
"#;
    let execution = start(addr, json!({ "yaml": yaml })).await;
    wait_for(&mut client, execution, "step:started").await;
    let (status, answer) = post(
        addr,
        &format!("/api/executions/{execution}/pause"),
        json!({}),
    )
    .await;
    assert_eq!((status, answer["state"].as_str()), (200, Some("paused")));
    wait_for(&mut client, execution, "pipeline:paused").await;
    // The running step finishes; the next one does not start while paused.
    let completed = wait_for(&mut client, execution, "step:completed").await;
    assert_eq!(completed.decode().body.scope().step, Some("first"));
    let waited = tokio::time::Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_millis(800), client.next()).await {
            Err(_) => break,
            Ok(frame) => assert_ne!(
                (
                    frame.event.as_str(),
                    frame.decode().body.scope().execution_id
                ),
                ("step:started", Some(execution)),
                "a step started while paused"
            ),
        }
        assert!(waited.elapsed() < Duration::from_secs(5));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while detail(addr, execution).await["status"] != "paused" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stored status never became paused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (status, answer) = post(
        addr,
        &format!("/api/executions/{execution}/resume"),
        json!({}),
    )
    .await;
    assert_eq!((status, answer["state"].as_str()), (200, Some("running")));
    let rest = run_to_end(&mut client, execution).await;
    assert_eq!(names(&rest)[0], "pipeline:resumed");
    assert!(names(&rest).contains(&"step:started"));
    assert_eq!(names(&rest).last(), Some(&"pipeline:completed"));
    assert_eq!(settled(addr, execution).await["status"], "completed");
}

#[sqlx::test(migrations = "../migrations")]
async fn cancel_aborts_the_stream_at_once(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let yaml = r#"
name: long
defaults: { provider: slow, max_tokens: 4000 }
steps:
  - { name: essay, prompt: "Write at length." }
  - { name: after, prompt: "{{ steps.essay.output }}" }
"#;
    let execution = start(addr, json!({ "yaml": yaml })).await;
    wait_for(&mut client, execution, "response:streaming").await;
    let asked = std::time::Instant::now();
    let (status, _) = post(
        addr,
        &format!("/api/executions/{execution}/cancel"),
        json!({"reason": "wrong topic"}),
    )
    .await;
    assert_eq!(status, 200);
    let rest = run_to_end(&mut client, execution).await;
    let took = asked.elapsed();
    assert!(took < Duration::from_millis(500), "cancel took {took:?}");
    let completed: Vec<_> = rest
        .iter()
        .filter(|f| f.event == "step:completed")
        .map(|f| f.decode())
        .collect();
    assert_eq!(completed.len(), 1);
    assert!(matches!(
        &completed[0].body,
        app::models::EventBody::StepCompleted(s) if s.status == app::models::StepStatus::Cancelled
    ));
    assert_eq!(names(&rest).last(), Some(&"pipeline:cancelled"));
    let detail = settled(addr, execution).await;
    assert_eq!(detail["status"], "cancelled");
    assert_eq!(detail["error"], "wrong topic");
    assert_eq!(
        detail["steps"].as_array().map(Vec::len),
        Some(1),
        "`after` never started"
    );
    assert_eq!(detail["steps"][0]["status"], "cancelled");
    // A finished run cannot be controlled any more.
    let (status, answer) = post(
        addr,
        &format!("/api/executions/{execution}/pause"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stalled_stream_times_out_retries_and_fails_with_the_reason(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let yaml = r#"
name: stalling
steps:
  - name: only
    provider: stalls
    prompt: "hello"
    timeout_ms: 300
    retry: { attempts: 2, backoff_ms: 50 }
"#;
    let execution = start(addr, json!({ "yaml": yaml })).await;
    let frames = run_to_end(&mut client, execution).await;
    assert_eq!(
        frames.iter().filter(|f| f.event == "step:started").count(),
        2,
        "retried once"
    );
    assert_eq!(names(&frames).last(), Some(&"pipeline:error"));
    let detail = settled(addr, execution).await;
    assert_eq!(detail["status"], "failed");
    let error = detail["error"].as_str().expect("error");
    assert!(error.contains("timeout of 300 ms"), "{error}");
    let attempts: Vec<_> = detail["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["attempt"].as_i64(), s["status"].as_str()))
        .collect();
    assert_eq!(
        attempts,
        [(Some(1), Some("failed")), (Some(2), Some("failed"))]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_token_budget_caps_the_response_and_refuses_an_oversized_prompt(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let too_small = r#"
name: budget
steps:
  - name: long
    provider: instant
    prompt: "Write a long essay about the history of databases."
    max_tokens: 2000
    token_budget: 30
"#;
    let execution = start(addr, json!({ "yaml": too_small })).await;
    let frames = run_to_end(&mut client, execution).await;
    let sent = frames
        .iter()
        .find(|f| f.event == "prompt:sent")
        .map(|f| f.decode())
        .expect("prompt sent");
    let app::models::EventBody::PromptSent(sent) = sent.body else {
        panic!("not a prompt")
    };
    // The provider is asked for what the budget leaves after the prompt, so the step stays in it.
    let cut = settled(addr, execution).await;
    let step = &cut["steps"][0];
    assert_eq!(step["status"], "completed", "{step}");
    assert_eq!(step["prompt_tokens"], sent.token_count);
    let total = step["total_tokens"].as_i64().expect("tokens");
    assert!(total <= 30 && total > i64::from(sent.token_count), "{step}");

    // A prompt that alone exceeds the budget never reaches the provider.
    let prompt_too_long = too_small.replace("token_budget: 30", "token_budget: 5");
    let execution = start(addr, json!({ "yaml": prompt_too_long, "save": true })).await;
    let frames = run_to_end(&mut client, execution).await;
    assert!(!names(&frames).contains(&"prompt:sent"));
    let error = settled(addr, execution).await["steps"][0]["error"].clone();
    assert!(
        error
            .as_str()
            .is_some_and(|e| e.contains("uses up the step's token_budget of 5")),
        "{error}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_step_replays_with_an_edited_prompt_as_a_linked_attempt(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let execution = start(addr, json!({ "yaml": CHAIN })).await;
    run_to_end(&mut client, execution).await;

    let (status, replayed) = post(
        addr,
        &format!("/api/executions/{execution}/steps/draft/replay"),
        json!({"prompt": "Shorter, please: {{ steps.outline.output }}", "model": "sim-large"}),
    )
    .await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["attempt"], 2);
    assert_eq!(replayed["replay_of"], 1);
    // The replay reports itself like any step.
    loop {
        let frame = wait_for(&mut client, execution, "step:completed").await;
        if frame.decode().body.scope().step == Some("draft") {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let detail = settled(addr, execution).await;
    assert_eq!(detail["status"], "completed", "the run itself is unchanged");
    let drafts: Vec<&Value> = detail["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["step"] == "draft")
        .collect();
    assert_eq!(drafts.len(), 2);
    let (original, replay) = (drafts[0], drafts[1]);
    assert_eq!(replay["attempt"], 2);
    assert_eq!(replay["replay_of"], 1);
    assert_eq!(replay["model"], "sim-large");
    assert_eq!(replay["status"], "completed");
    let outline = detail["steps"][0]["response"].as_str().expect("outline");
    assert_eq!(replay["prompt"], format!("Shorter, please: {outline}"));
    assert_ne!(replay["response"], original["response"]);

    // Unknown step, unknown attempt.
    let (status, _) = post(
        addr,
        &format!("/api/executions/{execution}/steps/nope/replay"),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, answer) = post(
        addr,
        &format!("/api/executions/{execution}/steps/draft/replay"),
        json!({"attempt": 9}),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_runs_every_input_set_within_its_concurrency(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let yaml = r#"
name: per-topic
defaults: { provider: slow, max_tokens: 8 }
inputs:
  topic: {}
  tone: { default: "plain" }
steps:
  - { name: only, prompt: "{{ topic }} in a {{ tone }} tone" }
"#;
    let (status, batch) = post(
        addr,
        "/api/batches",
        json!({"yaml": yaml, "csv": "topic,tone\nraft,dry\npaxos,fun\ngossip,plain\nleases,dry\nclocks,fun", "concurrency": 2}),
    )
    .await;
    assert_eq!(status, 202, "{batch}");
    let ids: Vec<Uuid> = batch["execution_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect();
    assert_eq!(ids.len(), 5);
    let mut running = 0;
    let mut most = 0;
    let mut finished = 0;
    while finished < 5 {
        let frame = client.next().await;
        match frame.event.as_str() {
            "pipeline:started" => {
                running += 1;
                most = most.max(running);
            }
            "pipeline:completed" => {
                running -= 1;
                finished += 1;
            }
            "pipeline:error" | "pipeline:cancelled" => panic!("{frame:?}"),
            _ => {}
        }
    }
    assert_eq!(most, 2);
    let batch_id: Uuid = batch["batch_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let mut topics = Vec::new();
    for id in &ids {
        let run = settled(addr, *id).await;
        assert_eq!(run["status"], "completed");
        assert_eq!(run["batch_id"], batch_id.to_string());
        topics.push(run["inputs"]["topic"].as_str().map(str::to_owned));
    }
    let expected = ["raft", "paxos", "gossip", "leases", "clocks"].map(|t| Some(t.to_owned()));
    assert_eq!(topics, expected, "one run per row, in order");
    let (status, counts) = get(addr, &format!("/api/batches/{batch_id}")).await;
    assert_eq!(
        (status, counts["statuses"]["completed"].as_i64()),
        (200, Some(5))
    );

    // Every set is checked first: a bad one is named and nothing starts.
    let (status, answer) = post(
        addr,
        "/api/batches",
        json!({"yaml": yaml, "inputs": [{"topic": "a"}, {"tone": "dry"}]}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["index"], 1);
    assert!(answer["error"]
        .as_str()
        .is_some_and(|e| e.contains("input `topic` is required")));
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_requests_say_what_to_fix(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({}), 422, "name the pipeline to run"),
        (json!({"pipeline": "nope"}), 404, "no pipeline named `nope`"),
        (
            json!({"yaml": "name: x\nsteps:\n  - name: a\n    promt: hi\n"}),
            422,
            "did you mean `prompt`",
        ),
        (
            json!({"yaml": CHAIN, "inputs": {"topik": 1}}),
            422,
            "unknown input `topik`",
        ),
        (
            json!({"yaml": CHAIN, "provider": "nope"}),
            422,
            "unknown provider `nope`",
        ),
        (json!({"yaml": CHAIN, "inputs": []}), 400, "invalid type"),
        (
            json!({"yaml": CHAIN, "extra": 1}),
            400,
            "unknown field `extra`",
        ),
    ];
    for (body, expected, message) in cases {
        let (status, answer) = post(addr, "/api/executions", body.clone()).await;
        assert_eq!(status, expected, "{body} → {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{body} → {error}");
    }
    // An invalid pipeline's problems come located.
    let (_, answer) = post(
        addr,
        "/api/executions",
        json!({"yaml": "name: x\nsteps:\n  - name: a\n    promt: hi\n"}),
    )
    .await;
    let diagnostics = answer["diagnostics"].as_array().expect("diagnostics");
    assert!(
        diagnostics
            .iter()
            .any(|d| d["line"] == 4 && d["column"] == 5 && d["suggestion"] == "prompt"),
        "{answer}"
    );
    let missing = Uuid::new_v4();
    let (status, _) = post(addr, &format!("/api/executions/{missing}/pause"), json!({})).await;
    assert_eq!(status, 409);
    let (status, _) = post(addr, &format!("/api/executions/{missing}/rerun"), json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = get(addr, "/api/executions/not-a-uuid").await;
    assert_eq!(status, 404);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_validator_answers_with_located_diagnostics(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/pipelines/validate"))
        .body("name: x\nsteps:\n  - name: a\n    provider: instnt\n    prompt: hi {{ nope }}\n")
        .send()
        .await
        .expect("validate");
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["valid"], false);
    let diagnostics = answer["diagnostics"].as_array().expect("diagnostics");
    assert!(diagnostics.len() >= 2, "all problems at once: {answer}");
    assert!(diagnostics
        .iter()
        .any(|d| d["line"] == 4 && d["suggestion"] == "instant"));
    let (status, answer) = post(addr, "/api/pipelines/validate", Value::Null).await;
    assert_eq!(status, 200, "{answer}");
    let valid = reqwest::Client::new()
        .post(format!("http://{addr}/api/pipelines/validate"))
        .body(CHAIN)
        .send()
        .await
        .expect("validate");
    let answer: Value = valid.json().await.expect("json");
    assert_eq!(answer["valid"], true);
    assert_eq!(answer["pipeline"]["steps"][2]["name"], "critique");
}

#[sqlx::test(migrations = "../migrations")]
async fn saved_pipelines_are_versioned_and_run_by_name(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let first = start(addr, json!({ "yaml": CHAIN })).await;
    run_to_end(&mut client, first).await;
    // The same text again is the same version; a change is the next when asked to save it.
    let again = start(addr, json!({ "yaml": CHAIN })).await;
    run_to_end(&mut client, again).await;
    let changed = CHAIN.replace("Outline {{ topic }}.", "Outline {{ topic }} briefly.");
    let (_, started) = post(
        addr,
        "/api/executions",
        json!({ "yaml": changed, "save": true }),
    )
    .await;
    assert_eq!(started["version"], 2);
    let by_name = start(addr, json!({ "pipeline": "chain", "version": 1 })).await;
    run_to_end(&mut client, by_name).await;
    assert_eq!(settled(addr, by_name).await["version"], 1);
    let (_, list) = get(addr, "/api/pipelines").await;
    assert_eq!(list[0]["name"], "chain");
    assert_eq!(list[0]["version"], 2);
    assert_eq!(list[0]["steps"], json!(["outline", "draft", "critique"]));
}

#[sqlx::test(migrations = "../migrations")]
async fn runs_of_a_stopped_instance_are_interrupted_at_start_and_can_be_rerun(pool: PgPool) {
    // A run left "running" by an instance that died, and one whose instance is alive.
    let dead = Uuid::new_v4();
    let alive = Uuid::new_v4();
    let mut holder = server::engine::recovery::hold_instance_lock(&pool, alive)
        .await
        .expect("lock");
    let (orphan, kept) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, instance) in [(orphan, dead), (kept, alive)] {
        sqlx::query(
            "INSERT INTO pipeline_executions (id, pipeline_name, status, instance_id, inputs, config, pipeline_version)
             VALUES ($1, 'chain', 'running', $2, '{\"topic\": \"raft\"}', '{}', 1)",
        )
        .bind(id)
        .bind(instance)
        .execute(&pool)
        .await
        .expect("insert");
        sqlx::query(
            "INSERT INTO step_executions (execution_id, step_name, status) VALUES ($1, 'outline', 'running')",
        )
        .bind(id)
        .execute(&pool)
        .await
        .expect("insert step");
    }
    sqlx::query(
        "INSERT INTO pipeline_definitions (name, version, yaml, source) VALUES ('chain', 1, $1, 'file')",
    )
    .bind(CHAIN)
    .execute(&pool)
    .await
    .expect("definition");

    let addr = serve(pool.clone(), providers(vec![])).await;
    let orphaned = detail(addr, orphan).await;
    assert_eq!(orphaned["status"], "interrupted");
    assert!(orphaned["error"]
        .as_str()
        .is_some_and(|e| e.contains("re-run")));
    assert_eq!(orphaned["steps"][0]["status"], "interrupted");
    assert_eq!(
        detail(addr, kept).await["status"],
        "running",
        "its instance is alive"
    );

    let mut client = connect(addr, "", None).await;
    let (status, rerun) = post(addr, &format!("/api/executions/{orphan}/rerun"), json!({})).await;
    assert_eq!(status, 202, "{rerun}");
    let id: Uuid = rerun["execution_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    run_to_end(&mut client, id).await;
    let rerun = settled(addr, id).await;
    assert_eq!(rerun["status"], "completed");
    assert_eq!(rerun["inputs"]["topic"], "raft");
    assert_eq!(rerun["version"], 1);
    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut holder)
        .await
        .expect("unlock");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_example_pipelines_run_to_completion(pool: PgPool) {
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("pipelines folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let yaml = std::fs::read_to_string(&file).expect("read");
        let execution = start(addr, json!({ "yaml": yaml, "provider": "instant" })).await;
        let frames = run_to_end(&mut client, execution).await;
        let last = frames.last().map(|f| f.data.clone()).unwrap_or_default();
        assert_eq!(
            names(&frames).last(),
            Some(&"pipeline:completed"),
            "{}: {last}",
            file.display()
        );
        let run = settled(addr, execution).await;
        for step in run["steps"].as_array().expect("steps") {
            let prompt = step["prompt"].as_str().unwrap_or_default();
            assert!(!prompt.contains("{{") && !prompt.contains("{%"), "{prompt}");
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn limits_at_the_top_of_their_range_do_not_overflow(pool: PgPool) {
    // max_tokens and token_budget at u32::MAX: the engine's stop-the-stream limit (max_tokens
    // plus a tenth) saturates instead of wrapping round to a tiny limit (or panicking).
    let addr = serve(pool, providers(vec![])).await;
    let mut client = connect(addr, "", None).await;
    let yaml = "name: huge-limits\ndefaults: { provider: instant, model: sim-small, max_tokens: 4294967295 }\nsteps:\n  - name: only\n    prompt: \"Say something.\"\n    token_budget: 4294967295\n";
    let execution = start(addr, json!({ "yaml": yaml })).await;
    let frames = run_to_end(&mut client, execution).await;
    assert_eq!(
        frames.last().map(|f| f.event.as_str()),
        Some("pipeline:completed")
    );
    let detail = common::settled(addr, execution).await;
    assert_eq!(detail["steps"][0]["status"], "completed", "{detail}");
}
