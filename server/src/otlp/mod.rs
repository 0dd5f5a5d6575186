//! OpenTelemetry traces as pipescope runs: a decoded OTLP export request becomes the same events
//! the ingest API takes (`pipeline:started`, `step:started`, `prompt:sent`, `response:received`,
//! `step:completed`, `log:entry`, `pipeline:completed|error`), so the store, the live stream and
//! the pages need nothing of their own for traces. The route is `http::otlp`; [`idle`] closes
//! traces whose root span never comes.
//!
//! Everything here is derived from the spans alone, deterministically: the execution's id is the
//! trace id, a step's name ends with its span id, and every event carries a client id built from
//! both. A repeated export (an exporter's retry) is then skipped as a duplicate, and spans may
//! arrive in any order and in any number of requests.

pub mod idle;

use std::{collections::HashMap, fmt};

use app::models::{
    EventBody, LogContext, LogEntry, LogLevel, PipelineCompleted, PipelineError, PipelineStarted,
    PromptSent, ResponseReceived, StepCompleted, StepStarted, StepStatus, Totals, Usage,
};
use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{any_value, AnyValue, KeyValue},
    trace::v1::{span::SpanKind, status::StatusCode, Span},
};
use providers::{PriceTable, ProviderKind};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::db;

/// `config.source` of an execution made from a trace; idle close looks only at these.
pub const SOURCE: &str = "otlp";
/// Longest span name kept in a step's name (the span id follows it).
const MAX_NAME_CHARS: usize = 200;
/// `pipeline` of a trace whose resource names no `service.name`.
const UNKNOWN_SERVICE: &str = "unknown_service";

/// One event to publish, with the client id that makes a repeated export a duplicate.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    pub id: String,
    pub at: DateTime<Utc>,
    pub body: EventBody,
}

/// What one export request becomes.
#[derive(Debug, Default)]
pub struct Translation {
    /// In publishing order: each trace's `pipeline:started`, its spans by start time, and last
    /// its close when the request carried its root span.
    pub events: Vec<SpanEvent>,
    /// Traces whose root span this request carried: closed by it.
    pub closed: Vec<Uuid>,
    /// Traces this request touched without closing them.
    pub open: Vec<Uuid>,
    /// Spans in the request.
    pub spans: usize,
    /// Every step this request describes, by execution: their totals are the request's own,
    /// so [`add_stored_totals`] counts only the trace's other steps from the store.
    steps: Vec<(Uuid, String)>,
}

/// Why a request cannot be taken, naming the span (`resourceSpans[0].scopeSpans[1].spans[2]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The execution a trace becomes: the trace id's 16 bytes are the UUID's, so one reads the
/// other (`4bf92f35…` is run `4bf92f35-…`).
pub fn execution_id(trace_id: &[u8; 16]) -> Uuid {
    Uuid::from_bytes(*trace_id)
}

/// A span checked and read: ids of the right length, times present.
struct Parsed<'a> {
    trace: [u8; 16],
    span: [u8; 8],
    parent: Option<[u8; 8]>,
    span_proto: &'a Span,
    attributes: Map<String, Value>,
    service: &'a str,
    scope: &'a str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// Reads and checks every span of `request` before anything is produced: one bad span refuses
/// the whole request (an exporter then drops or fixes the batch; nothing is half-stored).
pub fn translate(
    request: &ExportTraceServiceRequest,
    prices: &PriceTable,
) -> Result<Translation, Invalid> {
    let resources: Vec<Map<String, Value>> = request
        .resource_spans
        .iter()
        .map(|rs| {
            rs.resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default()
        })
        .collect();
    let mut parsed = Vec::new();
    for (r, resource_spans) in request.resource_spans.iter().enumerate() {
        let resource = &resources[r];
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(name) if !name.is_empty() => Some(name.as_str()),
                _ => None,
            })
            .unwrap_or(UNKNOWN_SERVICE);
        for (s, scope_spans) in resource_spans.scope_spans.iter().enumerate() {
            let scope = scope_spans
                .scope
                .as_ref()
                .map_or("", |scope| scope.name.as_str());
            for (i, span) in scope_spans.spans.iter().enumerate() {
                let path = format!("resourceSpans[{r}].scopeSpans[{s}].spans[{i}]");
                parsed.push((parse(span, path, service, scope)?, resource));
            }
        }
    }

    // Traces in the order the request first names them; each trace's spans by start time, a
    // parent before a child that started at the same instant.
    let mut order: Vec<[u8; 16]> = Vec::new();
    let mut by_trace: HashMap<[u8; 16], Vec<WithResource>> = HashMap::new();
    for (span, resource) in parsed {
        let spans = by_trace.entry(span.trace).or_insert_with(|| {
            order.push(span.trace);
            Vec::new()
        });
        spans.push((span, resource));
    }
    let mut translation = Translation::default();
    for trace in order {
        let mut spans = by_trace.remove(&trace).unwrap_or_default();
        spans.sort_by(|(a, _), (b, _)| {
            (a.start, a.parent.is_some(), a.span).cmp(&(b.start, b.parent.is_some(), b.span))
        });
        translation.spans += spans.len();
        translate_trace(&mut translation, &trace, &spans, prices);
    }
    Ok(translation)
}

fn parse<'a>(
    span: &'a Span,
    path: String,
    service: &'a str,
    scope: &'a str,
) -> Result<Parsed<'a>, Invalid> {
    let invalid = |message: String| Invalid {
        path: path.clone(),
        message,
    };
    let trace: [u8; 16] = span.trace_id.as_slice().try_into().map_err(|_| {
        invalid(format!(
            "traceId must be 16 bytes (32 hex digits in JSON), not {}",
            span.trace_id.len()
        ))
    })?;
    if trace == [0; 16] {
        return Err(invalid(
            "traceId is all zeroes, which is not a valid id".into(),
        ));
    }
    let span_id: [u8; 8] = span.span_id.as_slice().try_into().map_err(|_| {
        invalid(format!(
            "spanId must be 8 bytes (16 hex digits in JSON), not {}",
            span.span_id.len()
        ))
    })?;
    if span_id == [0; 8] {
        return Err(invalid(
            "spanId is all zeroes, which is not a valid id".into(),
        ));
    }
    let parent = match span.parent_span_id.len() {
        0 => None,
        8 => {
            let parent: [u8; 8] = span.parent_span_id.as_slice().try_into().unwrap_or([0; 8]);
            // Some exporters write an all-zero parent for a root span.
            (parent != [0; 8]).then_some(parent)
        }
        n => {
            return Err(invalid(format!(
                "parentSpanId must be empty or 8 bytes (16 hex digits in JSON), not {n}"
            )))
        }
    };
    let time = |nanos: u64, field: &str| -> Result<DateTime<Utc>, Invalid> {
        if nanos == 0 {
            return Err(invalid(format!("{field} is missing (0)")));
        }
        i64::try_from(nanos)
            .ok()
            .map(DateTime::from_timestamp_nanos)
            .ok_or_else(|| invalid(format!("{field} {nanos} is past the year 2262")))
    };
    let start = time(span.start_time_unix_nano, "startTimeUnixNano")?;
    // A span is exported once it ended; an end before the start (a clock step) counts as 0 ms.
    let end = match span.end_time_unix_nano {
        0 => start,
        nanos => time(nanos, "endTimeUnixNano")?.max(start),
    };
    Ok(Parsed {
        trace,
        span: span_id,
        parent,
        span_proto: span,
        attributes: attributes(&span.attributes),
        service,
        scope,
        start,
        end,
    })
}

/// A span and its resource's attributes.
type WithResource<'a> = (Parsed<'a>, &'a Map<String, Value>);

/// The events of one trace's spans in this request.
fn translate_trace(
    out: &mut Translation,
    trace: &[u8; 16],
    spans: &[WithResource],
    prices: &PriceTable,
) {
    let execution_id = execution_id(trace);
    let trace_hex = hex(trace);
    let root = spans.iter().find(|(span, _)| span.parent.is_none());
    let (first, resource) = root.unwrap_or(&spans[0]);
    // The first request to name a trace starts its run; a later `pipeline:started` is a
    // duplicate by its id, so the name comes from the resource, the same in every request.
    out.events.push(SpanEvent {
        id: format!("otlp/{trace_hex}/started"),
        at: first.start,
        body: EventBody::PipelineStarted(PipelineStarted {
            execution_id,
            pipeline: first.service.to_owned(),
            config: json!({
                "source": SOURCE,
                "trace_id": trace_hex,
                "resource": resource,
            }),
            inputs: json!({}),
            started_at: spans
                .iter()
                .map(|(s, _)| s.start)
                .min()
                .unwrap_or(first.start),
            version: None,
            batch_id: None,
        }),
    });
    let mut totals = Totals::default();
    for (span, _) in spans {
        let step = step_name(span);
        let (tokens, cost) = translate_span(&mut out.events, execution_id, &step, span, prices);
        totals.tokens += u64::from(tokens);
        totals.cost_usd += cost;
        out.steps.push((execution_id, step));
    }
    let Some((root, _)) = root else {
        out.open.push(execution_id);
        return;
    };
    out.closed.push(execution_id);
    totals.duration_ms = duration_ms(root);
    let status = root.span_proto.status.as_ref();
    let body = if status.is_some_and(|s| s.code == StatusCode::Error as i32) {
        EventBody::PipelineError(PipelineError {
            execution_id,
            error: error_message(root),
            step: Some(step_name(root)),
        })
    } else {
        let texts = Texts::of(root);
        EventBody::PipelineCompleted(PipelineCompleted {
            execution_id,
            results: match texts.output() {
                Some(output) => json!({ "output": output }),
                None => json!({}),
            },
            totals,
        })
    };
    out.events.push(SpanEvent {
        id: format!("otlp/{trace_hex}/end"),
        at: root.end,
        body,
    });
}

/// Unique within its trace (span names repeat: every call of a model is `chat gpt-4o`).
fn step_name(span: &Parsed) -> String {
    let name = span.span_proto.name.trim();
    let name: String = if name.is_empty() {
        "span".into()
    } else {
        name.chars().take(MAX_NAME_CHARS).collect()
    };
    format!("{name} · {}", hex(&span.span))
}

/// A span's step: its events, and the tokens and cost it adds to its run.
fn translate_span(
    events: &mut Vec<SpanEvent>,
    execution_id: Uuid,
    step: &str,
    span: &Parsed,
    prices: &PriceTable,
) -> (u32, f64) {
    let a = &span.attributes;
    let id = |what: &str| format!("otlp/{}/{}/{what}", hex(&span.trace), hex(&span.span));
    let llm = is_llm(a);
    let texts = Texts::of(span);
    let prompt_tokens = int(
        a,
        &[GEN_AI_INPUT_TOKENS, GEN_AI_PROMPT_TOKENS, OI_PROMPT_TOKENS],
    );
    let completion_tokens = int(
        a,
        &[
            GEN_AI_OUTPUT_TOKENS,
            GEN_AI_COMPLETION_TOKENS,
            OI_COMPLETION_TOKENS,
        ],
    );
    let total_tokens = int(a, &[OI_TOTAL_TOKENS, GEN_AI_TOTAL_TOKENS]).unwrap_or_else(|| {
        prompt_tokens
            .unwrap_or(0)
            .saturating_add(completion_tokens.unwrap_or(0))
    });
    let usage = Usage {
        prompt_tokens: prompt_tokens.unwrap_or(0),
        completion_tokens: completion_tokens.unwrap_or(0),
        total_tokens,
    };
    let (provider, model) = if llm {
        (
            text(a, &[GEN_AI_PROVIDER, GEN_AI_SYSTEM, OI_PROVIDER, OI_SYSTEM])
                .unwrap_or("otel")
                .to_owned(),
            text(a, &[GEN_AI_RESPONSE_MODEL, GEN_AI_REQUEST_MODEL, OI_MODEL])
                .unwrap_or_default()
                .to_owned(),
        )
    } else {
        // Shown as "span · <kind>" in the timeline: the OpenInference kind (chain, tool,
        // retriever…) or the GenAI operation (execute_tool, invoke_agent…) where there is one,
        // else OpenTelemetry's kind (internal, client, server…).
        let kind = text(a, &[OI_SPAN_KIND, GEN_AI_OPERATION])
            .map(str::to_lowercase)
            .unwrap_or_else(|| span_kind(span.span_proto.kind).to_owned());
        ("span".to_owned(), kind)
    };
    let cost = if llm {
        price(prices, &provider, &model, usage)
    } else {
        0.0
    };
    let mut config = Map::new();
    config.insert("kind".into(), json!(if llm { "llm" } else { "span" }));
    config.insert("span_id".into(), json!(hex(&span.span)));
    if let Some(parent) = &span.parent {
        config.insert("parent_span_id".into(), json!(hex(parent)));
    }
    config.insert("span_kind".into(), json!(span_kind(span.span_proto.kind)));
    if !span.scope.is_empty() {
        config.insert("scope".into(), json!(span.scope));
    }
    for (key, from) in [
        ("max_tokens", GEN_AI_MAX_TOKENS),
        ("temperature", GEN_AI_TEMPERATURE),
    ] {
        if let Some(value) = a.get(from) {
            config.insert(key.into(), value.clone());
        }
    }
    // Everything else the span said, less the texts that become the prompt and response.
    let rest: Map<String, Value> = a
        .iter()
        .filter(|(key, _)| !is_content(key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    config.insert("attributes".into(), Value::Object(rest));

    events.push(SpanEvent {
        id: id("started"),
        at: span.start,
        body: EventBody::StepStarted(StepStarted {
            execution_id,
            step: step.to_owned(),
            provider,
            model,
            attempt: 1,
            token_budget: None,
            replay_of: None,
            config: Value::Object(config),
        }),
    });
    if llm || texts.has_input() {
        events.push(SpanEvent {
            id: id("prompt"),
            at: span.start,
            body: EventBody::PromptSent(PromptSent {
                execution_id,
                step: step.to_owned(),
                prompt: texts.prompt(),
                system: texts.system(),
                template: String::new(),
                variables: Value::Null,
                token_count: usage.prompt_tokens,
            }),
        });
    }
    if llm || texts.output().is_some() {
        events.push(SpanEvent {
            id: id("response"),
            at: span.end,
            body: EventBody::ResponseReceived(ResponseReceived {
                execution_id,
                step: step.to_owned(),
                response: texts.output().unwrap_or_default(),
                usage,
                ttft_ms: None,
            }),
        });
    }
    for (index, event) in span.span_proto.events.iter().enumerate() {
        if is_content_event(&event.name) {
            continue;
        }
        let fields = attributes(&event.attributes);
        let exception = event.name == "exception";
        let message = match fields.get("exception.message").and_then(Value::as_str) {
            Some(message) if exception => message.to_owned(),
            _ => event.name.clone(),
        };
        let at = i64::try_from(event.time_unix_nano)
            .ok()
            .filter(|nanos| *nanos > 0)
            .map_or(span.start, DateTime::from_timestamp_nanos);
        events.push(SpanEvent {
            id: id(&format!("event/{index}")),
            at,
            body: EventBody::LogEntry(LogEntry {
                level: if exception {
                    LogLevel::Error
                } else {
                    LogLevel::Info
                },
                message,
                timestamp: at,
                context: LogContext {
                    execution_id: Some(execution_id),
                    step: Some(step.to_owned()),
                    fields,
                },
            }),
        });
    }
    let failed = span
        .span_proto
        .status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32);
    events.push(SpanEvent {
        id: id("completed"),
        at: span.end,
        body: EventBody::StepCompleted(StepCompleted {
            execution_id,
            step: step.to_owned(),
            duration_ms: duration_ms(span),
            tokens: usage.total_tokens,
            cost_usd: cost,
            status: if failed {
                StepStatus::Failed
            } else {
                StepStatus::Completed
            },
            error: failed.then(|| error_message(span)),
        }),
    });
    (usage.total_tokens, cost)
}

fn duration_ms(span: &Parsed) -> u64 {
    u64::try_from((span.end - span.start).num_milliseconds()).unwrap_or(0)
}

/// The status message, else the first exception's, else a plain statement.
fn error_message(span: &Parsed) -> String {
    let status = span
        .span_proto
        .status
        .as_ref()
        .map(|s| s.message.trim())
        .filter(|m| !m.is_empty());
    let exception = || {
        span.span_proto
            .events
            .iter()
            .filter(|e| e.name == "exception")
            .flat_map(|e| &e.attributes)
            .find(|kv| kv.key == "exception.message")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(message) => Some(message.clone()),
                _ => None,
            })
    };
    status
        .map(str::to_owned)
        .or_else(exception)
        .unwrap_or_else(|| format!("span {:?} ended with status ERROR", span.span_proto.name))
}

fn span_kind(kind: i32) -> &'static str {
    match SpanKind::try_from(kind).unwrap_or(SpanKind::Unspecified) {
        SpanKind::Unspecified => "unspecified",
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

/// The price table's provider for a GenAI `gen_ai.system` / OpenInference `llm.provider` name.
fn price(prices: &PriceTable, provider: &str, model: &str, usage: Usage) -> f64 {
    let kind = match provider {
        "openai" | "azure.ai.openai" | "azure" => ProviderKind::Openai,
        "anthropic" => ProviderKind::Anthropic,
        "gemini" | "gcp.gemini" | "gcp.vertex_ai" | "gcp.gen_ai" | "google" | "vertex_ai" => {
            ProviderKind::Gemini
        }
        _ => return 0.0,
    };
    let usage = providers::Usage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
    };
    prices.cost(provider, kind, model, usage)
}

// The attribute names read, by family. GenAI: the OpenTelemetry semantic conventions
// (`gen_ai.*`, with the older `prompt_tokens` / `completion_tokens` names and the indexed
// `gen_ai.prompt.N.*` attributes OpenLLMetry writes). OpenInference: Arize's conventions.
const GEN_AI_SYSTEM: &str = "gen_ai.system";
const GEN_AI_PROVIDER: &str = "gen_ai.provider.name";
const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
const GEN_AI_OPERATION: &str = "gen_ai.operation.name";
const GEN_AI_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
const GEN_AI_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
const GEN_AI_PROMPT_TOKENS: &str = "gen_ai.usage.prompt_tokens";
const GEN_AI_COMPLETION_TOKENS: &str = "gen_ai.usage.completion_tokens";
const GEN_AI_TOTAL_TOKENS: &str = "gen_ai.usage.total_tokens";
const GEN_AI_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
const GEN_AI_TEMPERATURE: &str = "gen_ai.request.temperature";
const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
const GEN_AI_PROMPT: &str = "gen_ai.prompt";
const GEN_AI_COMPLETION: &str = "gen_ai.completion";
const OI_SPAN_KIND: &str = "openinference.span.kind";
const OI_MODEL: &str = "llm.model_name";
const OI_PROVIDER: &str = "llm.provider";
const OI_SYSTEM: &str = "llm.system";
const OI_PROMPT_TOKENS: &str = "llm.token_count.prompt";
const OI_COMPLETION_TOKENS: &str = "llm.token_count.completion";
const OI_TOTAL_TOKENS: &str = "llm.token_count.total";
const OI_INPUT: &str = "input.value";
const OI_OUTPUT: &str = "output.value";
const OI_INPUT_MESSAGES: &str = "llm.input_messages.";
const OI_OUTPUT_MESSAGES: &str = "llm.output_messages.";

/// GenAI operations that are a model generating text; the others (`execute_tool`,
/// `invoke_agent`, `create_agent`, `embeddings`) are spans around or beside one.
const LLM_OPERATIONS: [&str; 3] = ["chat", "text_completion", "generate_content"];

/// A model call: OpenInference says so with its span kind (`LLM`; a `CHAIN` or `TOOL` is not,
/// whatever else it carries), GenAI with its operation; without either, any GenAI provider or
/// model attribute, or an OpenInference model name, makes it one.
fn is_llm(a: &Map<String, Value>) -> bool {
    if let Some(kind) = text(a, &[OI_SPAN_KIND]) {
        return kind.eq_ignore_ascii_case("LLM");
    }
    if let Some(operation) = text(a, &[GEN_AI_OPERATION]) {
        return LLM_OPERATIONS.contains(&operation);
    }
    [
        GEN_AI_SYSTEM,
        GEN_AI_PROVIDER,
        GEN_AI_REQUEST_MODEL,
        GEN_AI_RESPONSE_MODEL,
        OI_MODEL,
    ]
    .iter()
    .any(|key| a.contains_key(*key))
}

/// Attributes whose text becomes the step's prompt or response, not kept twice in its config.
fn is_content(key: &str) -> bool {
    [
        GEN_AI_INPUT_MESSAGES,
        GEN_AI_OUTPUT_MESSAGES,
        GEN_AI_SYSTEM_INSTRUCTIONS,
        OI_INPUT,
        OI_OUTPUT,
    ]
    .contains(&key)
        || [
            "gen_ai.prompt.",
            "gen_ai.completion.",
            OI_INPUT_MESSAGES,
            OI_OUTPUT_MESSAGES,
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

/// Span events that carry a prompt or completion (read into the texts, not logged).
fn is_content_event(name: &str) -> bool {
    matches!(
        name,
        "gen_ai.content.prompt"
            | "gen_ai.content.completion"
            | "gen_ai.system.message"
            | "gen_ai.user.message"
            | "gen_ai.assistant.message"
            | "gen_ai.tool.message"
            | "gen_ai.choice"
    )
}

/// A span's prompt and response, from whichever convention carried them.
#[derive(Debug, Default)]
struct Texts {
    system: Vec<String>,
    /// (role, text) of every input message but the system ones.
    input: Vec<(String, String)>,
    output: Vec<String>,
}

impl Texts {
    fn of(span: &Parsed) -> Self {
        let a = &span.attributes;
        let mut texts = Texts::default();
        // Input: the first convention that has it.
        let mut input: Vec<(String, String)> = messages_value(a.get(GEN_AI_INPUT_MESSAGES));
        if input.is_empty() {
            input = indexed_messages(a, "gen_ai.prompt.", ".role", ".content");
        }
        if input.is_empty() {
            input = indexed_messages(a, OI_INPUT_MESSAGES, ".message.role", ".message.content");
        }
        if input.is_empty() {
            input = event_messages(span);
        }
        if input.is_empty() {
            if let Some(value) = string_of(a.get(OI_INPUT)) {
                input.push(("user".into(), value));
            }
        }
        texts.system = part_texts(a.get(GEN_AI_SYSTEM_INSTRUCTIONS))
            .into_iter()
            .collect();
        for (role, text) in input {
            if role == "system" {
                texts.system.push(text);
            } else {
                texts.input.push((role, text));
            }
        }
        // Output, the same way.
        let mut output: Vec<String> = messages_value(a.get(GEN_AI_OUTPUT_MESSAGES))
            .into_iter()
            .map(|(_, text)| text)
            .collect();
        if output.is_empty() {
            output = indexed_messages(a, "gen_ai.completion.", ".role", ".content")
                .into_iter()
                .map(|(_, text)| text)
                .collect();
        }
        if output.is_empty() {
            output = indexed_messages(a, OI_OUTPUT_MESSAGES, ".message.role", ".message.content")
                .into_iter()
                .map(|(_, text)| text)
                .collect();
        }
        if output.is_empty() {
            output = event_completions(span);
        }
        if output.is_empty() {
            output.extend(string_of(a.get(OI_OUTPUT)));
        }
        texts.output = output;
        texts
    }

    fn has_input(&self) -> bool {
        !self.input.is_empty() || !self.system.is_empty()
    }

    /// One user message is the prompt as it is; a conversation is each turn after its role.
    fn prompt(&self) -> String {
        match self.input.as_slice() {
            [(role, text)] if role == "user" => text.clone(),
            turns => turns
                .iter()
                .map(|(role, text)| format!("{role}: {text}"))
                .collect::<Vec<_>>()
                .join("\n\n"),
        }
    }

    fn system(&self) -> Option<String> {
        (!self.system.is_empty()).then(|| self.system.join("\n\n"))
    }

    fn output(&self) -> Option<String> {
        (!self.output.is_empty()).then(|| self.output.join("\n\n"))
    }
}

/// `gen_ai.input.messages` / `gen_ai.output.messages`: a JSON array of
/// `{"role": …, "parts": [{"type": "text", "content": …}]}` (or `"content": …`), as a string
/// attribute or a structured one.
fn messages_value(value: Option<&Value>) -> Vec<(String, String)> {
    let parsed;
    let list = match value {
        Some(Value::String(text)) => {
            parsed = serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
            &parsed
        }
        Some(value) => value,
        None => return Vec::new(),
    };
    let Some(items) = list.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|message| {
            let role = message
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("user")
                .to_owned();
            let text = message_text(message)?;
            Some((role, text))
        })
        .collect()
}

/// The text of one message: its `content` (a string or a list of parts) or its `parts`.
fn message_text(message: &Value) -> Option<String> {
    if let Some(text) = message.as_str() {
        return Some(text.to_owned());
    }
    for key in ["content", "parts"] {
        match message.get(key) {
            Some(Value::String(text)) => return Some(text.clone()),
            Some(parts @ Value::Array(_)) => {
                let texts = part_texts(Some(parts));
                if !texts.is_empty() {
                    return Some(texts.join("\n"));
                }
            }
            _ => {}
        }
    }
    None
}

/// The texts of a list of parts (`[{"type": "text", "content": …}]`, or `text` for `content`).
fn part_texts(value: Option<&Value>) -> Vec<String> {
    let parsed;
    let value = match value {
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Array(_)) => {
                parsed = value;
                &parsed
            }
            _ => return vec![text.clone()],
        },
        Some(value) => value,
        None => return Vec::new(),
    };
    value
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|part| match part {
                    Value::String(text) => Some(text.clone()),
                    _ => ["content", "text"]
                        .iter()
                        .find_map(|k| part.get(*k)?.as_str().map(str::to_owned)),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `<prefix>N<role>` / `<prefix>N<content>` attributes, by N.
fn indexed_messages(
    a: &Map<String, Value>,
    prefix: &str,
    role: &str,
    content: &str,
) -> Vec<(String, String)> {
    let mut found: Vec<(u32, String, String)> = Vec::new();
    for (key, value) in a {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        let Some(index) = rest.strip_suffix(content) else {
            continue;
        };
        let Ok(index) = index.parse::<u32>() else {
            continue;
        };
        let Some(text) = string_of(Some(value)) else {
            continue;
        };
        let role = a
            .get(&format!("{prefix}{index}{role}"))
            .and_then(Value::as_str)
            .unwrap_or("user")
            .to_owned();
        found.push((index, role, text));
    }
    found.sort_by_key(|(index, _, _)| *index);
    found
        .into_iter()
        .map(|(_, role, text)| (role, text))
        .collect()
}

/// Input messages as span events: `gen_ai.content.prompt` (`gen_ai.prompt`) or the
/// `gen_ai.<role>.message` events (`content`).
fn event_messages(span: &Parsed) -> Vec<(String, String)> {
    let mut messages = Vec::new();
    for event in &span.span_proto.events {
        let fields = attributes(&event.attributes);
        match event.name.as_str() {
            "gen_ai.content.prompt" => {
                if let Some(value) = fields.get(GEN_AI_PROMPT) {
                    let listed = messages_value(Some(value));
                    if listed.is_empty() {
                        messages.extend(string_of(Some(value)).map(|t| ("user".to_owned(), t)));
                    } else {
                        messages.extend(listed);
                    }
                }
            }
            name => {
                let role = name
                    .strip_prefix("gen_ai.")
                    .and_then(|n| n.strip_suffix(".message"));
                if let Some(role) = role {
                    if let Some(text) = fields.get("content").and_then(message_text) {
                        messages.push((role.to_owned(), text));
                    }
                }
            }
        }
    }
    messages
}

/// Completions as span events: `gen_ai.content.completion` (`gen_ai.completion`) or
/// `gen_ai.choice` (`message` or `content`).
fn event_completions(span: &Parsed) -> Vec<String> {
    let mut out = Vec::new();
    for event in &span.span_proto.events {
        let fields = attributes(&event.attributes);
        match event.name.as_str() {
            "gen_ai.content.completion" => {
                if let Some(value) = fields.get(GEN_AI_COMPLETION) {
                    let listed = messages_value(Some(value));
                    if listed.is_empty() {
                        out.extend(string_of(Some(value)));
                    } else {
                        out.extend(listed.into_iter().map(|(_, text)| text));
                    }
                }
            }
            "gen_ai.choice" => {
                let message = fields.get("message").map(|m| match m {
                    Value::String(text) => serde_json::from_str(text).unwrap_or(m.clone()),
                    other => other.clone(),
                });
                let text = message
                    .as_ref()
                    .and_then(message_text)
                    .or_else(|| fields.get("content").and_then(message_text));
                out.extend(text);
            }
            _ => {}
        }
    }
    out
}

/// The first of `keys` holding text.
fn text<'a>(a: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|key| a.get(*key)?.as_str().filter(|t| !t.is_empty()))
}

/// The first of `keys` holding a count (an int, a whole double, or digits in a string).
fn int(a: &Map<String, Value>, keys: &[&str]) -> Option<u32> {
    keys.iter().find_map(|key| {
        let value = a.get(*key)?;
        let n = match value {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as u64)
            })?,
            Value::String(text) => text.trim().parse().ok()?,
            _ => return None,
        };
        Some(u32::try_from(n).unwrap_or(u32::MAX))
    })
}

/// A value as text: a string as it is, anything else as JSON.
fn string_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// OTLP attributes as a JSON object (ints as numbers, bytes as hex, lists and maps nested).
pub fn attributes(list: &[KeyValue]) -> Map<String, Value> {
    list.iter()
        .map(|kv| (kv.key.clone(), any_value(kv.value.as_ref())))
        .collect()
}

fn any_value(value: Option<&AnyValue>) -> Value {
    use any_value::Value as V;
    match value.and_then(|v| v.value.as_ref()) {
        None => Value::Null,
        Some(V::StringValue(text)) => Value::String(text.clone()),
        Some(V::BoolValue(b)) => Value::Bool(*b),
        Some(V::IntValue(n)) => json!(n),
        // NaN and infinities have no JSON form.
        Some(V::DoubleValue(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Some(V::ArrayValue(list)) => {
            Value::Array(list.values.iter().map(|v| any_value(Some(v))).collect())
        }
        Some(V::KvlistValue(list)) => Value::Object(attributes(&list.values)),
        Some(V::BytesValue(bytes)) => Value::String(hex(bytes)),
        // An index into a profile's string table; a trace request has no such table.
        Some(V::StringValueStrindex(_)) => Value::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Adds to each close of `translation` the tokens and cost of its trace's steps stored by
/// earlier requests (those of this request are counted already).
pub async fn add_stored_totals(
    pool: &PgPool,
    translation: &mut Translation,
) -> Result<(), sqlx::Error> {
    if translation.closed.is_empty() {
        return Ok(());
    }
    let sums = db::traces::step_sums(pool, &translation.closed, &translation.steps).await?;
    for event in &mut translation.events {
        if let EventBody::PipelineCompleted(completed) = &mut event.body {
            if let Some(sums) = sums
                .iter()
                .find(|s| s.execution_id == completed.execution_id)
            {
                completed.totals.tokens += u64::try_from(sums.tokens).unwrap_or(0);
                completed.totals.cost_usd += sums.cost_usd;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
