//! OpenTelemetry trace ingest (`POST /v1/traces`): spans exported by the Rust SDK's own OTLP/HTTP
//! exporter, and OTLP/JSON bodies, become runs and steps in Postgres and on the live stream;
//! spans out of order and repeated exports are the same run; a malformed or invalid request is
//! refused whole with its reason; a trace whose root never comes is closed when idle.

use std::{io::Write, net::SocketAddr, time::Duration};

use crate::common::{connect, run_to_end, serve, state};
use app::models::EventBody;
use prost::Message;
use serde_json::{json, Value};
use server::{http::otlp::RpcStatus, state::BackboneSettings};
use sqlx::PgPool;
use uuid::Uuid;

/// A small research pipeline traced with the OpenTelemetry SDK and exported span by span (the
/// simple processor: each span is sent as it ends, so the children arrive before their root)
/// over OTLP/HTTP with protobuf and gzip. Returns the trace id.
fn export_research_brief(endpoint: &str) -> [u8; 16] {
    use opentelemetry::{
        trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _},
        Context, KeyValue,
    };
    use opentelemetry_otlp::{Compression, Protocol, WithExportConfig, WithHttpConfig};

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_compression(Compression::Gzip)
        .build()
        .expect("exporter");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("research-brief")
                .build(),
        )
        .build();
    let tracer = provider.tracer("pipescope-test");
    let root = tracer.start("brief");
    let cx = Context::current_with_span(root);

    let mut retrieve = tracer.start_with_context("retrieve documents", &cx);
    retrieve.add_event("cache miss", vec![KeyValue::new("documents", 3_i64)]);
    retrieve.end();

    // GenAI semantic conventions, prompt and completion as span events.
    let mut chat = tracer.start_with_context("chat gpt-4o-mini", &cx);
    chat.set_attributes([
        KeyValue::new("gen_ai.system", "openai"),
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
        KeyValue::new("gen_ai.usage.input_tokens", 120_i64),
        KeyValue::new("gen_ai.usage.output_tokens", 80_i64),
    ]);
    chat.add_event(
        "gen_ai.content.prompt",
        vec![KeyValue::new(
            "gen_ai.prompt",
            "Write a five-point outline about event sourcing.",
        )],
    );
    chat.add_event(
        "gen_ai.content.completion",
        vec![KeyValue::new(
            "gen_ai.completion",
            "1. Events are facts\n2. Projections",
        )],
    );
    chat.end();

    // OpenInference.
    let mut critique = tracer.start_with_context("ChatCompletion", &cx);
    critique.set_attributes([
        KeyValue::new("openinference.span.kind", "LLM"),
        KeyValue::new("llm.provider", "anthropic"),
        KeyValue::new("llm.model_name", "claude-haiku-4-5"),
        KeyValue::new("llm.token_count.prompt", 30_i64),
        KeyValue::new("llm.token_count.completion", 12_i64),
        KeyValue::new("llm.token_count.total", 42_i64),
        KeyValue::new("input.value", "Critique this outline."),
        KeyValue::new("output.value", "Point 2 is thin."),
    ]);
    critique.end();

    let trace = cx.span().span_context().trace_id().to_bytes();
    cx.span().end();
    provider.shutdown().expect("every span exported");
    trace
}

#[derive(Debug, sqlx::FromRow)]
struct StepRow {
    step_name: String,
    status: String,
    provider: Option<String>,
    model: Option<String>,
    kind: Option<String>,
    prompt: Option<String>,
    response: Option<String>,
    prompt_tokens: Option<i32>,
    completion_tokens: Option<i32>,
    total_tokens: Option<i32>,
    cost_usd: Option<f64>,
}

async fn steps(pool: &PgPool, execution: Uuid) -> Vec<StepRow> {
    sqlx::query_as(
        "SELECT step_name, status, provider, model, config->>'kind' AS kind, prompt, response,
                prompt_tokens, completion_tokens, total_tokens, cost_usd::float8 AS cost_usd
         FROM step_executions WHERE execution_id = $1 ORDER BY started_at, step_name",
    )
    .bind(execution)
    .fetch_all(pool)
    .await
    .expect("steps")
}

async fn execution(pool: &PgPool, id: Uuid) -> Option<(String, String, i64, f64, Value)> {
    sqlx::query_as(
        "SELECT status, pipeline_name, total_tokens, cost_usd::float8, COALESCE(results, 'null')
         FROM pipeline_executions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .expect("execution")
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrations = "../migrations")]
async fn spans_from_the_rust_exporter_become_a_run_with_its_steps_prompts_and_tokens(pool: PgPool) {
    let addr = serve(state(pool.clone(), BackboneSettings::default()).await).await;
    let mut client = connect(addr, "", None).await;
    let endpoint = format!("http://{addr}/v1/traces");
    let trace = tokio::task::spawn_blocking(move || export_research_brief(&endpoint))
        .await
        .expect("the exporter's thread");
    let id = Uuid::from_bytes(trace);

    // Live: the run starts with its first span, each span is a step, the root closes it.
    let frames = run_to_end(&mut client, id).await;
    let names: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"pipeline:started"), "{names:?}");
    assert_eq!(names.last(), Some(&"pipeline:completed"), "{names:?}");
    assert_eq!(names.iter().filter(|n| **n == "step:started").count(), 4);
    assert_eq!(names.iter().filter(|n| **n == "step:completed").count(), 4);
    let events: Vec<EventBody> = frames.iter().map(|f| f.decode().body).collect();
    let prompt = events
        .iter()
        .find_map(|e| match e {
            EventBody::PromptSent(p) if p.step.starts_with("chat gpt-4o-mini · ") => Some(p),
            _ => None,
        })
        .expect("the chat's prompt on the stream");
    assert_eq!(
        prompt.prompt,
        "Write a five-point outline about event sourcing."
    );
    assert_eq!(prompt.token_count, 120);
    let response = events
        .iter()
        .find_map(|e| match e {
            EventBody::ResponseReceived(r) if r.step.starts_with("ChatCompletion · ") => Some(r),
            _ => None,
        })
        .expect("the critique's response on the stream");
    assert_eq!(response.response, "Point 2 is thin.");
    assert_eq!(response.usage.total_tokens, 42);
    let EventBody::PipelineCompleted(completed) = events.last().expect("last") else {
        panic!("completed")
    };
    assert_eq!(completed.totals.tokens, 242);

    // Stored: the exporter's requests were answered once their events were in Postgres.
    let (status, pipeline, tokens, cost, _) = execution(&pool, id).await.expect("the run");
    assert_eq!(
        (status.as_str(), pipeline.as_str(), tokens),
        ("completed", "research-brief", 242)
    );
    // gpt-4o-mini 120 + 80 tokens, claude-haiku-4-5 30 + 12, at the built-in prices.
    let expected = (120.0 * 0.15 + 80.0 * 0.60 + 30.0 * 1.0 + 12.0 * 5.0) / 1e6;
    assert!((cost - expected).abs() < 1e-6, "{cost} vs {expected}");
    let rows = steps(&pool, id).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r.status == "completed"), "{rows:?}");
    let row = |prefix: &str| {
        rows.iter()
            .find(|r| r.step_name.starts_with(prefix))
            .unwrap_or_else(|| panic!("no step {prefix}: {rows:?}"))
    };
    let root = row("brief · ");
    assert_eq!(root.kind.as_deref(), Some("span"));
    assert_eq!(root.provider.as_deref(), Some("span"));
    let retrieve = row("retrieve documents · ");
    assert_eq!(
        (retrieve.kind.as_deref(), retrieve.prompt.as_deref()),
        (Some("span"), None)
    );
    let chat = row("chat gpt-4o-mini · ");
    assert_eq!(chat.kind.as_deref(), Some("llm"));
    assert_eq!(
        (chat.provider.as_deref(), chat.model.as_deref()),
        (Some("openai"), Some("gpt-4o-mini"))
    );
    assert_eq!(
        chat.prompt.as_deref(),
        Some("Write a five-point outline about event sourcing.")
    );
    assert_eq!(
        chat.response.as_deref(),
        Some("1. Events are facts\n2. Projections")
    );
    assert_eq!(
        (
            chat.prompt_tokens,
            chat.completion_tokens,
            chat.total_tokens
        ),
        (Some(120), Some(80), Some(200))
    );
    assert!(chat.cost_usd.is_some_and(|c| c > 0.0));
    let critique = row("ChatCompletion · ");
    assert_eq!(
        (critique.provider.as_deref(), critique.model.as_deref()),
        (Some("anthropic"), Some("claude-haiku-4-5"))
    );
    assert_eq!(critique.prompt.as_deref(), Some("Critique this outline."));
    assert_eq!(critique.response.as_deref(), Some("Point 2 is thin."));
    assert_eq!(critique.total_tokens, Some(42));
    // The retrieval's span event is a line of the run's log.
    let logged: Vec<String> =
        sqlx::query_scalar("SELECT message FROM log_entries WHERE execution_id = $1")
            .bind(id)
            .fetch_all(&pool)
            .await
            .expect("log");
    assert_eq!(logged, ["cache miss"]);
}

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

fn attr(key: &str, value: Value) -> Value {
    let value = match value {
        Value::String(text) => json!({ "stringValue": text }),
        // OTLP/JSON writes 64-bit integers as strings.
        Value::Number(n) => json!({ "intValue": n.to_string() }),
        other => panic!("{other}"),
    };
    json!({ "key": key, "value": value })
}

fn json_span(
    span: &str,
    parent: &str,
    name: &str,
    start_ms: u64,
    end_ms: u64,
    attributes: Vec<Value>,
) -> Value {
    let t0: u64 = 1_764_000_000_000_000_000;
    json!({
        "traceId": TRACE, "spanId": span, "parentSpanId": parent, "name": name, "kind": 1,
        "startTimeUnixNano": (t0 + start_ms * 1_000_000).to_string(),
        "endTimeUnixNano": (t0 + end_ms * 1_000_000).to_string(),
        "attributes": attributes,
    })
}

fn json_request(spans: Vec<Value>) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", json!("nightly-summary"))]},
        "scopeSpans": [{"scope": {"name": "openinference.instrumentation"}, "spans": spans}]
    }]})
}

fn llm_span() -> Value {
    json_span(
        "00f067aa0ba902b7",
        "53995c3f42cd8ad8",
        "ChatCompletion",
        10,
        900,
        vec![
            attr("openinference.span.kind", json!("LLM")),
            attr("llm.model_name", json!("gpt-4o")),
            attr("llm.provider", json!("openai")),
            attr("llm.token_count.prompt", json!(1000)),
            attr("llm.token_count.completion", json!(100)),
            attr("input.value", json!("Summarise the day.")),
            attr("output.value", json!("A quiet day.")),
        ],
    )
}

fn root_span() -> Value {
    json_span(
        "53995c3f42cd8ad8",
        "",
        "nightly",
        0,
        1_000,
        vec![attr("openinference.span.kind", json!("CHAIN"))],
    )
}

/// Posts `body` to /v1/traces; gzip-compressed when `gzip`.
async fn post(addr: SocketAddr, content_type: &str, body: Vec<u8>, gzip: bool) -> (u16, Vec<u8>) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/v1/traces"))
        .header("content-type", content_type);
    let body = if gzip {
        request = request.header("content-encoding", "gzip");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&body).expect("gzip");
        encoder.finish().expect("gzip")
    } else {
        body
    };
    let response = request.body(body).send().await.expect("post");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

async fn post_json(addr: SocketAddr, body: &Value, gzip: bool) -> (u16, Value) {
    let (status, bytes) = post(
        addr,
        "application/json",
        body.to_string().into_bytes(),
        gzip,
    )
    .await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn otlp_json_in_any_order_and_repeated_is_one_run(pool: PgPool) {
    let addr = serve(state(pool.clone(), BackboneSettings::default()).await).await;
    let id: Uuid = TRACE.parse().expect("a trace id is a UUID");

    // The child first, gzip-compressed: the run starts and stays open.
    let (status, answer) = post_json(addr, &json_request(vec![llm_span()]), true).await;
    assert_eq!((status, &answer), (200, &json!({})));
    let (status, pipeline, ..) = execution(&pool, id).await.expect("the run");
    assert_eq!(
        (status.as_str(), pipeline.as_str()),
        ("running", "nightly-summary")
    );

    // Its root, then everything again (an exporter's retry): one run, each event once.
    let (status, _) = post_json(addr, &json_request(vec![root_span()]), false).await;
    assert_eq!(status, 200);
    let events = count(&pool, "events").await;
    let (status, _) = post_json(addr, &json_request(vec![root_span(), llm_span()]), false).await;
    assert_eq!(status, 200);
    assert_eq!(
        count(&pool, "events").await,
        events,
        "a repeated export stores nothing"
    );
    assert_eq!(count(&pool, "pipeline_executions").await, 1);

    let (status, _, tokens, cost, results) = execution(&pool, id).await.expect("the run");
    // The root came in a later request than the LLM span: its tokens are counted from the store.
    assert_eq!((status.as_str(), tokens), ("completed", 1100));
    assert!(
        (cost - (1000.0 * 2.5 + 100.0 * 10.0) / 1e6).abs() < 1e-6,
        "{cost}"
    );
    assert_eq!(results, json!({}));
    let rows = steps(&pool, id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].step_name, "nightly · 53995c3f42cd8ad8");
    assert_eq!(
        (rows[0].kind.as_deref(), rows[0].model.as_deref()),
        (Some("span"), Some("chain"))
    );
    assert_eq!(rows[1].step_name, "ChatCompletion · 00f067aa0ba902b7");
    assert_eq!(rows[1].prompt.as_deref(), Some("Summarise the day."));
    assert_eq!(rows[1].response.as_deref(), Some("A quiet day."));
    assert_eq!(
        (
            rows[1].prompt_tokens,
            rows[1].completion_tokens,
            rows[1].total_tokens
        ),
        (Some(1000), Some(100), Some(1100))
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn malformed_or_invalid_requests_get_400_with_the_reason_and_store_nothing(pool: PgPool) {
    let addr = serve(state(pool.clone(), BackboneSettings::default()).await).await;

    // Truncated protobuf: field 1 says 127 bytes follow, two do.
    let (status, body) = post(
        addr,
        "application/x-protobuf",
        vec![0x0a, 0x7f, 0x0a, 0x00],
        false,
    )
    .await;
    assert_eq!(status, 400);
    let refusal = RpcStatus::decode(body.as_slice()).expect("a google.rpc.Status");
    assert_eq!(refusal.code, 3);
    assert!(
        refusal.message.contains("malformed protobuf"),
        "{}",
        refusal.message
    );

    let (status, answer) = post(
        addr,
        "application/json",
        b"{\"resourceSpans\": [".to_vec(),
        false,
    )
    .await;
    let answer: Value = serde_json::from_slice(&answer).expect("json");
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .expect("error")
            .contains("malformed OTLP/JSON"),
        "{answer}"
    );
    assert_eq!(answer["code"], 3);

    // A trace id that is not hex.
    let mut bad_hex = llm_span();
    bad_hex["traceId"] = json!("not-hex");
    let (status, answer) = post_json(addr, &json_request(vec![bad_hex]), false).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .expect("error")
            .contains("malformed OTLP/JSON"),
        "{answer}"
    );

    // One span of three is wrong: the request is refused whole, naming it.
    let mut short = root_span();
    short["traceId"] = json!("0102030405060708");
    let (status, answer) = post_json(
        addr,
        &json_request(vec![llm_span(), root_span(), short]),
        false,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let error = answer["error"].as_str().expect("error");
    assert!(
        error.contains("resourceSpans[0].scopeSpans[0].spans[2]"),
        "{error}"
    );
    assert!(error.contains("traceId must be 16 bytes"), "{error}");

    // A NUL the store cannot hold, in one span's text.
    let mut nul = llm_span();
    nul["attributes"][5] = attr("input.value", json!("a\u{0}b"));
    let (status, answer) = post_json(addr, &json_request(vec![root_span(), nul]), false).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().expect("error").contains("NUL"),
        "{answer}"
    );

    // Not gzip though it says so; a type OTLP does not use.
    let (status, _) = post(addr, "application/json", b"{}".to_vec(), false).await;
    assert_eq!(status, 200, "an empty export is fine");
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/v1/traces"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip");
    request = request.body("{}");
    let response = request.send().await.expect("post");
    assert_eq!(response.status().as_u16(), 400);
    let (status, _) = post(addr, "text/plain", b"{}".to_vec(), false).await;
    assert_eq!(status, 415);

    assert_eq!(count(&pool, "pipeline_executions").await, 0);
    assert_eq!(count(&pool, "step_executions").await, 0);
    assert_eq!(count(&pool, "events").await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_trace_whose_root_never_comes_is_closed_when_idle(pool: PgPool) {
    let settings = BackboneSettings {
        otlp_idle_close: Duration::from_millis(300),
        ..Default::default()
    };
    let addr = serve(state(pool.clone(), settings).await).await;
    let id: Uuid = TRACE.parse().expect("uuid");
    let (status, _) = post_json(addr, &json_request(vec![llm_span()]), false).await;
    assert_eq!(status, 200);

    // However slow the machine: wait for the close, with a generous deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (status, _, tokens, _, results) = loop {
        let run = execution(&pool, id).await.expect("the run");
        if run.0 != "running" {
            break run;
        }
        assert!(tokio::time::Instant::now() < deadline, "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((status.as_str(), tokens), ("completed", 1100));
    assert_eq!(results, json!({"closed": "idle"}));
    let warning: String = sqlx::query_scalar(
        "SELECT message FROM log_entries WHERE execution_id = $1 AND level = 'warn'",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .expect("the reason in the run's log");
    assert!(warning.contains("root span never came"), "{warning}");

    // The root arriving late still closes the run with its own status.
    let (status, _) = post_json(addr, &json_request(vec![root_span()]), false).await;
    assert_eq!(status, 200);
    let (_, _, tokens, _, results) = execution(&pool, id).await.expect("the run");
    assert_eq!((tokens, results), (1100, json!({})));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_trace_closed_by_its_root_is_not_closed_again_when_idle(pool: PgPool) {
    let settings = BackboneSettings {
        otlp_idle_close: Duration::from_millis(100),
        ..Default::default()
    };
    let addr = serve(state(pool.clone(), settings).await).await;
    let id: Uuid = TRACE.parse().expect("uuid");
    let (status, _) = post_json(addr, &json_request(vec![llm_span(), root_span()]), false).await;
    assert_eq!(status, 200);
    // A close would be its own pipeline:completed event; none comes in eight idle times.
    let mut client = connect(addr, &format!("?execution={id}"), None).await;
    client.assert_quiet(Duration::from_millis(800)).await;
    let completions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE execution_id = $1 AND name = 'pipeline:completed'",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(completions, 1);
}
