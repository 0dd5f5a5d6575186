use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, KeyValue},
    resource::v1::Resource,
    trace::v1::{span, status, ResourceSpans, ScopeSpans, Status},
};

use super::*;

const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const T0: u64 = 1_764_000_000_000_000_000;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn i(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

fn span(
    id: u8,
    parent: Option<u8>,
    name: &str,
    start_ms: u64,
    end_ms: u64,
    attributes: Vec<KeyValue>,
) -> Span {
    Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
        parent_span_id: parent
            .map(|p| vec![0, 0, 0, 0, 0, 0, 0, p])
            .unwrap_or_default(),
        name: name.into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: T0 + start_ms * 1_000_000,
        end_time_unix_nano: T0 + end_ms * 1_000_000,
        attributes,
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![s("service.name", "brief-writer")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn names(t: &Translation) -> Vec<&'static str> {
    t.events.iter().map(|e| e.body.name()).collect()
}

fn genai_chat(id: u8, parent: Option<u8>) -> Span {
    span(
        id,
        parent,
        "chat gpt-4o-mini",
        10,
        1_210,
        vec![
            s("gen_ai.system", "openai"),
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.request.model", "gpt-4o-mini"),
            i("gen_ai.usage.input_tokens", 1_000),
            i("gen_ai.usage.output_tokens", 2_000),
            s(
                "gen_ai.input.messages",
                r#"[{"role":"system","parts":[{"type":"text","content":"Be brief."}]},
                    {"role":"user","parts":[{"type":"text","content":"Outline event sourcing."}]}]"#,
            ),
            s(
                "gen_ai.output.messages",
                r#"[{"role":"assistant","parts":[{"type":"text","content":"1. Events are facts."}]}]"#,
            ),
        ],
    )
}

#[test]
fn a_trace_is_a_run_and_a_genai_span_a_priced_llm_step() {
    let root = span(
        1,
        None,
        "research-brief",
        0,
        1_500,
        vec![s("output.value", "done")],
    );
    let t = translate(
        &request(vec![genai_chat(2, Some(1)), root]),
        &PriceTable::new(vec![]),
    )
    .expect("valid");
    assert_eq!(t.spans, 2);
    assert_eq!(t.closed, vec![execution_id(&TRACE)]);
    assert!(t.open.is_empty());
    assert_eq!(
        names(&t),
        [
            "pipeline:started",
            // The root first: it started first. It has an output and no input.
            "step:started",
            "response:received",
            "step:completed",
            "step:started",
            "prompt:sent",
            "response:received",
            "step:completed",
            "pipeline:completed",
        ]
    );
    let EventBody::PipelineStarted(started) = &t.events[0].body else {
        panic!("started")
    };
    assert_eq!(started.pipeline, "brief-writer");
    assert_eq!(
        started.execution_id.simple().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(started.config["source"], "otlp");

    let EventBody::StepStarted(root_step) = &t.events[1].body else {
        panic!("root step")
    };
    assert_eq!(root_step.step, "research-brief · 0000000000000001");
    assert_eq!(
        (root_step.provider.as_str(), root_step.model.as_str()),
        ("span", "internal")
    );
    assert_eq!(root_step.config["kind"], "span");

    let EventBody::StepStarted(chat) = &t.events[4].body else {
        panic!("chat step")
    };
    assert_eq!(chat.step, "chat gpt-4o-mini · 0000000000000002");
    assert_eq!(
        (chat.provider.as_str(), chat.model.as_str()),
        ("openai", "gpt-4o-mini")
    );
    assert_eq!(chat.config["kind"], "llm");
    assert_eq!(chat.config["parent_span_id"], "0000000000000001");
    assert!(chat.config["attributes"]
        .get("gen_ai.input.messages")
        .is_none());
    let EventBody::PromptSent(prompt) = &t.events[5].body else {
        panic!("prompt")
    };
    assert_eq!(prompt.prompt, "Outline event sourcing.");
    assert_eq!(prompt.system.as_deref(), Some("Be brief."));
    assert_eq!(prompt.token_count, 1_000);
    let EventBody::ResponseReceived(response) = &t.events[6].body else {
        panic!("response")
    };
    assert_eq!(response.response, "1. Events are facts.");
    assert_eq!(response.usage.total_tokens, 3_000);
    let EventBody::StepCompleted(done) = &t.events[7].body else {
        panic!("completed")
    };
    assert_eq!(done.duration_ms, 1_200);
    assert_eq!(done.status, StepStatus::Completed);
    // gpt-4o-mini: 0.15 + 2 × 0.60 USD per million tokens.
    assert!((done.cost_usd - 0.00135).abs() < 1e-12, "{}", done.cost_usd);

    let EventBody::PipelineCompleted(end) = &t.events[8].body else {
        panic!("end")
    };
    assert_eq!(end.totals.tokens, 3_000);
    assert_eq!(end.totals.duration_ms, 1_500);
    assert_eq!(end.results["output"], "done");
    assert_eq!(t.events[8].id, "otlp/4bf92f3577b34da6a3ce929d0e0e4736/end");
}

#[test]
fn openinference_spans_map_too_and_a_chain_is_a_span_step() {
    let llm = span(
        3,
        Some(2),
        "ChatCompletion",
        5,
        50,
        vec![
            s("openinference.span.kind", "LLM"),
            s("llm.provider", "anthropic"),
            s("llm.model_name", "claude-haiku-4-5"),
            i("llm.token_count.prompt", 12),
            i("llm.token_count.completion", 30),
            i("llm.token_count.total", 42),
            s("llm.input_messages.1.message.role", "user"),
            s("llm.input_messages.1.message.content", "and the second"),
            s("llm.input_messages.0.message.role", "system"),
            s("llm.input_messages.0.message.content", "You are terse."),
            s("output.value", "Both."),
        ],
    );
    let chain = span(
        2,
        None,
        "agent",
        0,
        60,
        vec![
            s("openinference.span.kind", "CHAIN"),
            // A chain that names a model is still not a model call.
            s("llm.model_name", "ignored"),
            s("input.value", "{\"question\": \"why\"}"),
        ],
    );
    let t = translate(&request(vec![llm, chain]), &PriceTable::new(vec![])).expect("valid");
    let steps: Vec<&StepStarted> = t
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::StepStarted(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        (steps[0].provider.as_str(), steps[0].model.as_str()),
        ("span", "chain")
    );
    assert_eq!(
        (steps[1].provider.as_str(), steps[1].model.as_str()),
        ("anthropic", "claude-haiku-4-5")
    );
    let prompts: Vec<&PromptSent> = t
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::PromptSent(p) => Some(p),
            _ => None,
        })
        .collect();
    // The chain's input is shown as its prompt; it has no output, so no response.
    assert_eq!(prompts[0].prompt, "{\"question\": \"why\"}");
    assert_eq!(prompts[1].prompt, "and the second");
    assert_eq!(prompts[1].system.as_deref(), Some("You are terse."));
    let responses: Vec<&ResponseReceived> = t
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::ResponseReceived(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].response, "Both.");
    assert_eq!(
        responses[0].usage,
        Usage {
            prompt_tokens: 12,
            completion_tokens: 30,
            total_tokens: 42
        }
    );
    let EventBody::PipelineCompleted(end) = &t.events.last().expect("end").body else {
        panic!("end")
    };
    assert_eq!(end.totals.tokens, 42);
    // claude-haiku-4-5: 1 and 5 USD per million tokens.
    assert!((end.totals.cost_usd - 0.000162).abs() < 1e-12);
}

#[test]
fn prompts_in_span_events_and_indexed_attributes_failures_and_exceptions() {
    let mut events_span = span(
        5,
        Some(9),
        "completion",
        0,
        10,
        vec![
            s("gen_ai.system", "openai"),
            s("gen_ai.request.model", "gpt-4o"),
        ],
    );
    events_span.events = vec![
        span::Event {
            name: "gen_ai.content.prompt".into(),
            attributes: vec![s("gen_ai.prompt", "Say hi")],
            ..Default::default()
        },
        span::Event {
            name: "gen_ai.content.completion".into(),
            attributes: vec![s("gen_ai.completion", "hi")],
            ..Default::default()
        },
    ];
    let mut indexed = span(
        6,
        Some(9),
        "chat",
        20,
        30,
        vec![
            s("gen_ai.system", "mistral"),
            s("gen_ai.request.model", "small"),
            s("gen_ai.prompt.0.role", "user"),
            s("gen_ai.prompt.0.content", "first"),
            s("gen_ai.prompt.1.role", "assistant"),
            s("gen_ai.prompt.1.content", "second"),
            s("gen_ai.completion.0.content", "third"),
        ],
    );
    indexed.status = Some(Status {
        code: status::StatusCode::Error as i32,
        message: String::new(),
    });
    indexed.events = vec![span::Event {
        name: "exception".into(),
        time_unix_nano: T0 + 25_000_000,
        attributes: vec![
            s("exception.message", "rate limited"),
            s("exception.type", "RateLimit"),
        ],
        ..Default::default()
    }];
    let t = translate(
        &request(vec![indexed, events_span]),
        &PriceTable::new(vec![]),
    )
    .expect("valid");
    // No root span: the trace stays open.
    assert_eq!(t.open, vec![execution_id(&TRACE)]);
    assert!(t.closed.is_empty());
    let texts: Vec<String> = t
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::PromptSent(p) => Some(p.prompt.clone()),
            EventBody::ResponseReceived(r) => Some(r.response.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        ["Say hi", "hi", "user: first\n\nassistant: second", "third"]
    );
    let log = t
        .events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::LogEntry(l) => Some(l),
            _ => None,
        })
        .expect("the exception logged");
    assert_eq!(log.level, LogLevel::Error);
    assert_eq!(log.message, "rate limited");
    assert_eq!(log.context.fields["exception.type"], "RateLimit");
    let failed = t
        .events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::StepCompleted(c) if c.status == StepStatus::Failed => Some(c),
            _ => None,
        })
        .expect("a failed step");
    assert_eq!(failed.error.as_deref(), Some("rate limited"));
    // An unknown provider costs nothing rather than a guess.
    assert_eq!(failed.cost_usd, 0.0);
}

#[test]
fn the_same_spans_in_any_order_make_the_same_events() {
    let spans = vec![
        span(1, None, "root", 0, 100, vec![]),
        genai_chat(2, Some(1)),
        span(3, Some(1), "tool", 5, 6, vec![]),
    ];
    let prices = PriceTable::new(vec![]);
    let forward = translate(&request(spans.clone()), &prices).expect("valid");
    let mut reversed = spans;
    reversed.reverse();
    let backward = translate(&request(reversed), &prices).expect("valid");
    assert_eq!(forward.events, backward.events);
    // Split over two requests, the ids are the same ones.
    let first = translate(&request(vec![genai_chat(2, Some(1))]), &prices).expect("valid");
    let ids: Vec<&str> = forward.events.iter().map(|e| e.id.as_str()).collect();
    assert!(first.events.iter().all(|e| ids.contains(&e.id.as_str())));
}

#[test]
fn a_bad_span_is_named_with_what_is_wrong() {
    let mut short = span(2, None, "x", 0, 1, vec![]);
    short.trace_id = vec![1, 2, 3];
    let error = translate(
        &request(vec![span(1, None, "ok", 0, 1, vec![]), short]),
        &PriceTable::new(vec![]),
    )
    .expect_err("refused");
    assert_eq!(error.path, "resourceSpans[0].scopeSpans[0].spans[1]");
    assert!(
        error.message.contains("traceId must be 16 bytes"),
        "{error}"
    );

    let mut unstarted = span(1, None, "x", 0, 1, vec![]);
    unstarted.start_time_unix_nano = 0;
    let error =
        translate(&request(vec![unstarted]), &PriceTable::new(vec![])).expect_err("refused");
    assert!(
        error.message.contains("startTimeUnixNano is missing"),
        "{error}"
    );

    let mut zero = span(1, None, "x", 0, 1, vec![]);
    zero.span_id = vec![0; 8];
    assert!(translate(&request(vec![zero]), &PriceTable::new(vec![])).is_err());
}

#[test]
fn otlp_json_reads_hex_ids_and_string_integers() {
    let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
        "scopeSpans":[{"scope":{"name":"s"},"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId":"00f067aa0ba902b7","name":"chat","kind":3,
        "startTimeUnixNano":"1764000000000000000","endTimeUnixNano":1764000000500000000,
        "attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"7"}},
                      {"key":"gen_ai.request.model","value":{"stringValue":"m"}}]}]}]}]}"#;
    let request: ExportTraceServiceRequest = serde_json::from_str(json).expect("OTLP/JSON");
    let t = translate(&request, &PriceTable::new(vec![])).expect("valid");
    let EventBody::PromptSent(prompt) = &t.events[2].body else {
        panic!("prompt")
    };
    assert_eq!(prompt.token_count, 7);
    assert_eq!(prompt.step, "chat · 00f067aa0ba902b7");
    let EventBody::StepCompleted(done) = &t.events[4].body else {
        panic!("completed")
    };
    assert_eq!(done.duration_ms, 500);
}

#[test]
fn a_genai_tool_or_agent_operation_is_a_span_step() {
    let tool = span(
        2,
        Some(1),
        "execute_tool get_weather",
        0,
        5,
        vec![
            s("gen_ai.operation.name", "execute_tool"),
            s("gen_ai.system", "openai"),
            s("gen_ai.tool.name", "get_weather"),
        ],
    );
    let embed = span(
        3,
        Some(1),
        "embeddings",
        6,
        7,
        vec![
            s("gen_ai.operation.name", "embeddings"),
            s("gen_ai.request.model", "text-embedding-3-small"),
        ],
    );
    let chat = span(
        4,
        Some(1),
        "generate",
        8,
        9,
        vec![s("gen_ai.operation.name", "generate_content")],
    );
    let t = translate(&request(vec![tool, embed, chat]), &PriceTable::new(vec![])).expect("valid");
    let steps: Vec<(String, String, Value)> = t
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::StepStarted(s) => Some((
                s.provider.clone(),
                s.model.clone(),
                s.config["kind"].clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("span".into(), "execute_tool".into(), json!("span")),
            ("span".into(), "embeddings".into(), json!("span")),
            ("otel".into(), "".into(), json!("llm")),
        ]
    );
}
