//! Local HTTP servers that speak each provider's streaming wire format, for tests of the
//! clients here and of the engine. Each answers from a queue of scripted replies (so retries can
//! be tested: first a 429, then a stream) and records every request it received.
//!
//! ```no_run
//! # async fn demo() {
//! use providers::{fakes::{FakeServer, Reply}, ProviderKind, Usage};
//! let server = FakeServer::start(
//!     ProviderKind::Anthropic,
//!     vec![
//!         Reply::error(429, "slow down").with_retry_after("1"),
//!         Reply::stream(&["Hel", "lo"], Usage { prompt_tokens: 5, completion_tokens: 2 }),
//!     ],
//! )
//! .await;
//! let base_url = server.url();
//! # }
//! ```

use std::{
    collections::{BTreeMap, VecDeque},
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::Response,
    Router,
};
use serde_json::{json, Value};

use crate::{config::HttpConfig, ProviderKind, Usage};

/// One scripted answer, used for the next request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A complete streamed response: `chunks` as text deltas, `usage` where the provider
    /// reports it, the provider's terminal marker, `chunk_delay` before each chunk.
    Stream {
        chunks: Vec<String>,
        usage: Usage,
        chunk_delay: Duration,
    },
    /// A refused request: the status with the provider's error body.
    Error {
        status: u16,
        message: String,
        /// Sent as the `retry-after` header verbatim (seconds or an HTTP date); Gemini gets a
        /// number of seconds as `RetryInfo.retryDelay` in the body instead, as it sends it.
        retry_after: Option<String>,
    },
    /// The response starts, sends `after_chunks` text chunks, then the connection is cut.
    Disconnect { after_chunks: usize },
    /// The response starts, sends `after_chunks` text chunks, then nothing more, ever.
    Stall { after_chunks: usize },
    /// The response starts, sends `after_chunks` text chunks, then the provider's in-stream
    /// error (OpenAI `{"error"}`, Anthropic `event: error`, Gemini `{"error"}`); `status`
    /// picks the error type as for `Error`.
    StreamError {
        after_chunks: usize,
        status: u16,
        message: String,
    },
    /// Exactly this, for what the provider would never send (garbage, a truncated stream).
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
}

impl Reply {
    pub fn stream(chunks: &[&str], usage: Usage) -> Self {
        Self::Stream {
            chunks: chunks.iter().map(|c| (*c).to_owned()).collect(),
            usage,
            chunk_delay: Duration::ZERO,
        }
    }

    pub fn error(status: u16, message: &str) -> Self {
        Self::Error {
            status,
            message: message.to_owned(),
            retry_after: None,
        }
    }

    /// Adds a `retry-after` to an `Error`; other replies are returned unchanged.
    pub fn with_retry_after(self, value: &str) -> Self {
        match self {
            Self::Error {
                status, message, ..
            } => Self::Error {
                status,
                message,
                retry_after: Some(value.to_owned()),
            },
            other => other,
        }
    }

    /// Sets the delay before each chunk of a `Stream`; other replies are returned unchanged.
    pub fn with_chunk_delay(self, delay: Duration) -> Self {
        match self {
            Self::Stream { chunks, usage, .. } => Self::Stream {
                chunks,
                usage,
                chunk_delay: delay,
            },
            other => other,
        }
    }
}

/// A request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-case names; for repeated headers, the last value.
    pub headers: BTreeMap<String, String>,
    /// `Value::Null` when the body was not JSON.
    pub body: Value,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

struct Script {
    kind: ProviderKind,
    replies: VecDeque<Reply>,
    received: Vec<ReceivedRequest>,
    /// Response bodies still being sent; a client that drops its stream closes its one.
    open_streams: Arc<AtomicUsize>,
}

/// Counts a streaming body as open until hyper drops it (finished, or the client went away).
struct OpenStream(Arc<AtomicUsize>);

impl OpenStream {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

type Shared = Arc<Mutex<Script>>;

/// A running fake; stops accepting connections when dropped.
#[derive(Debug)]
pub struct FakeServer {
    url: String,
    addr: SocketAddr,
    script: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("kind", &self.kind)
            .field("replies_left", &self.replies.len())
            .field("received", &self.received.len())
            .finish()
    }
}

impl FakeServer {
    /// Listens on a free loopback port. Panics if none can be bound: it is a test fixture.
    /// `ProviderKind::Simulated` has no wire format; its fake answers every request with 404.
    pub async fn start(kind: ProviderKind, replies: Vec<Reply>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a fake provider binds a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let script = Arc::new(Mutex::new(Script {
            kind,
            replies: replies.into(),
            received: Vec::new(),
            open_streams: Arc::new(AtomicUsize::new(0)),
        }));
        let app = Router::new().fallback(answer).with_state(script.clone());
        let task = tokio::spawn(async move {
            // Ends only when the task is aborted.
            let _ = axum::serve(listener, app).await;
        });
        // OpenAI-compatible base URLs include the version; the others add it per path.
        let url = match kind {
            ProviderKind::Openai => format!("http://{addr}/v1"),
            _ => format!("http://{addr}"),
        };
        Self {
            url,
            addr,
            script,
            task,
        }
    }

    /// The base URL to configure the provider with.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A config pointing the provider at this fake with `api_key`.
    pub fn http_config(&self, api_key: &str) -> HttpConfig {
        HttpConfig {
            base_url: Some(self.url.clone()),
            api_key: Some(api_key.to_owned()),
            api_key_env: None,
        }
    }

    /// Queues another reply after the ones given at start.
    pub fn push(&self, reply: Reply) {
        lock(&self.script).replies.push_back(reply);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.script).received.clone()
    }

    /// Streamed responses still open: a stalled one stays open until the client drops it.
    pub fn open_streams(&self) -> usize {
        lock(&self.script).open_streams.load(Ordering::SeqCst)
    }

    pub fn replies_left(&self) -> usize {
        lock(&self.script).replies.len()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(script: &Shared) -> MutexGuard<'_, Script> {
    // A test that panicked while holding the lock has failed already; the data is still fine.
    script
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn answer(
    State(script): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = ReceivedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let (kind, reply, open_streams) = {
        let mut script = lock(&script);
        script.received.push(request.clone());
        (
            script.kind,
            script.replies.pop_front(),
            script.open_streams.clone(),
        )
    };

    let Some(model) = route(kind, &method, &request) else {
        return error_response(
            kind,
            404,
            &format!(
                "the fake {kind} server has no route for {method} {}",
                request.path
            ),
            None,
        );
    };
    let Some(reply) = reply else {
        return error_response(
            kind,
            500,
            "the fake server has no scripted reply left",
            None,
        );
    };
    let include_usage = request.body["stream_options"]["include_usage"] == json!(true);
    let wire = Wire {
        kind,
        model,
        include_usage,
    };
    match reply {
        Reply::Error {
            status,
            message,
            retry_after,
        } => error_response(kind, status, &message, retry_after.as_deref()),
        Reply::Raw {
            status,
            content_type,
            body,
        } => Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("a scripted raw reply is a valid response"),
        Reply::Stream {
            chunks,
            usage,
            chunk_delay,
        } => {
            let mut frames: Vec<(String, Duration)> = wire
                .preamble(usage)
                .into_iter()
                .map(|f| (f, Duration::ZERO))
                .collect();
            let count = chunks.len();
            for (i, chunk) in chunks.iter().enumerate() {
                let last = i + 1 == count;
                frames.push((wire.content(chunk, last.then_some(usage)), chunk_delay));
            }
            frames.extend(
                wire.ending(usage, count == 0)
                    .into_iter()
                    .map(|f| (f, Duration::ZERO)),
            );
            sse(frames, Tail::End, &open_streams)
        }
        Reply::Disconnect { after_chunks } => {
            sse(wire.partial(after_chunks), Tail::Cut, &open_streams)
        }
        Reply::Stall { after_chunks } => {
            sse(wire.partial(after_chunks), Tail::Stall, &open_streams)
        }
        Reply::StreamError {
            after_chunks,
            status,
            message,
        } => {
            let mut frames = wire.partial(after_chunks);
            frames.push((wire.stream_error(status, &message), Duration::ZERO));
            sse(frames, Tail::End, &open_streams)
        }
    }
}

/// The model the request is for, when it went to the provider's streaming endpoint.
fn route(kind: ProviderKind, method: &Method, request: &ReceivedRequest) -> Option<String> {
    if method != Method::POST {
        return None;
    }
    let from_body = || request.body["model"].as_str().map(str::to_owned);
    match kind {
        ProviderKind::Openai if request.path == "/v1/chat/completions" => from_body(),
        ProviderKind::Anthropic if request.path == "/v1/messages" => from_body(),
        ProviderKind::Gemini => {
            let model = request
                .path
                .strip_prefix("/v1beta/models/")?
                .strip_suffix(":streamGenerateContent")?;
            let sse = request
                .query
                .as_deref()
                .is_some_and(|q| q.split('&').any(|pair| pair == "alt=sse"));
            sse.then(|| model.to_owned())
        }
        _ => None,
    }
}

/// How a scripted stream ends after its frames.
enum Tail {
    End,
    /// The connection is dropped without finishing the body.
    Cut,
    /// The body stays open and silent.
    Stall,
}

fn sse(frames: Vec<(String, Duration)>, tail: Tail, open_streams: &Arc<AtomicUsize>) -> Response {
    let open = OpenStream::new(open_streams);
    let body = async_stream::stream! {
        let _open = open;
        for (frame, delay) in frames {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            yield Ok::<_, std::io::Error>(Bytes::from(frame));
        }
        match tail {
            Tail::End => {}
            Tail::Cut => {
                // hyper drops frames still buffered when the body fails; let them go out first,
                // as they would have on a real connection that broke later.
                tokio::time::sleep(Duration::from_millis(50)).await;
                yield Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "scripted disconnect",
                ));
            }
            Tail::Stall => std::future::pending::<()>().await,
        }
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .expect("a stream response is valid")
}

/// One provider's event framing for one response.
struct Wire {
    kind: ProviderKind,
    model: String,
    /// OpenAI sends the usage chunk only when `stream_options.include_usage` asked for it.
    include_usage: bool,
}

const CREATED: u64 = 1_750_000_000;

impl Wire {
    fn frame(&self, event: Option<&str>, data: &Value) -> String {
        match (self.kind, event) {
            (_, Some(event)) => format!("event: {event}\ndata: {data}\n\n"),
            // Gemini separates events with CRLF pairs.
            (ProviderKind::Gemini, None) => format!("data: {data}\r\n\r\n"),
            (_, None) => format!("data: {data}\n\n"),
        }
    }

    fn openai_chunk(&self, delta: Value, finish_reason: Value) -> Value {
        let mut chunk = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    fn gemini_chunk(&self, text: &str, finish: Option<Usage>, usage: Usage) -> Value {
        let mut candidate = json!({
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        });
        let usage_metadata = match finish {
            Some(final_usage) => {
                candidate["finishReason"] = json!("STOP");
                json!({
                    "promptTokenCount": final_usage.prompt_tokens,
                    "candidatesTokenCount": final_usage.completion_tokens,
                    "totalTokenCount": final_usage.prompt_tokens + final_usage.completion_tokens,
                })
            }
            // Intermediate chunks carry the prompt count only.
            None => json!({
                "promptTokenCount": usage.prompt_tokens,
                "totalTokenCount": usage.prompt_tokens,
            }),
        };
        json!({
            "candidates": [candidate],
            "usageMetadata": usage_metadata,
            "modelVersion": self.model,
            "responseId": "fake-response",
        })
    }

    /// What precedes the first text chunk.
    fn preamble(&self, usage: Usage) -> Vec<String> {
        match self.kind {
            ProviderKind::Openai => vec![self.frame(
                None,
                &self.openai_chunk(
                    json!({"role": "assistant", "content": "", "refusal": null}),
                    Value::Null,
                ),
            )],
            ProviderKind::Anthropic => vec![
                self.frame(
                    Some("message_start"),
                    &json!({"type": "message_start", "message": {
                        "id": "msg_fake", "type": "message", "role": "assistant", "content": [],
                        "model": self.model, "stop_reason": null, "stop_sequence": null,
                        "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": 1},
                    }}),
                ),
                self.frame(
                    Some("content_block_start"),
                    &json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}),
                ),
                self.frame(Some("ping"), &json!({"type": "ping"})),
            ],
            ProviderKind::Gemini | ProviderKind::Simulated => Vec::new(),
        }
    }

    /// One text chunk; for Gemini the last one also carries the finish reason and usage.
    fn content(&self, text: &str, last_with: Option<Usage>) -> String {
        match self.kind {
            ProviderKind::Openai => self.frame(
                None,
                &self.openai_chunk(json!({"content": text}), Value::Null),
            ),
            ProviderKind::Anthropic => self.frame(
                Some("content_block_delta"),
                &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": text}}),
            ),
            ProviderKind::Gemini | ProviderKind::Simulated => self.frame(
                None,
                &self.gemini_chunk(text, last_with, last_with.unwrap_or_default()),
            ),
        }
    }

    /// What follows the last text chunk, terminal marker included.
    fn ending(&self, usage: Usage, no_chunks: bool) -> Vec<String> {
        match self.kind {
            ProviderKind::Openai => {
                let mut frames =
                    vec![self.frame(None, &self.openai_chunk(json!({}), json!("stop")))];
                if self.include_usage {
                    frames.push(self.frame(
                        None,
                        &json!({
                            "id": "chatcmpl-fake", "object": "chat.completion.chunk",
                            "created": CREATED, "model": self.model,
                            "system_fingerprint": "fp_fake", "choices": [],
                            "usage": {
                                "prompt_tokens": usage.prompt_tokens,
                                "completion_tokens": usage.completion_tokens,
                                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
                            },
                        }),
                    ));
                }
                frames.push("data: [DONE]\n\n".to_owned());
                frames
            }
            ProviderKind::Anthropic => vec![
                self.frame(
                    Some("content_block_stop"),
                    &json!({"type": "content_block_stop", "index": 0}),
                ),
                self.frame(
                    Some("message_delta"),
                    &json!({"type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                        "usage": {"output_tokens": usage.completion_tokens}}),
                ),
                self.frame(Some("message_stop"), &json!({"type": "message_stop"})),
            ],
            // The finish reason rode on the last text chunk, unless there was none.
            ProviderKind::Gemini | ProviderKind::Simulated if no_chunks => {
                vec![self.frame(None, &self.gemini_chunk("", Some(usage), usage))]
            }
            ProviderKind::Gemini | ProviderKind::Simulated => Vec::new(),
        }
    }

    /// The start of a response that will not finish: preamble and `chunks` text chunks.
    fn partial(&self, chunks: usize) -> Vec<(String, Duration)> {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 0,
        };
        let mut frames = self.preamble(usage);
        frames.extend((0..chunks).map(|i| self.content(&format!("part {i} "), None)));
        frames.into_iter().map(|f| (f, Duration::ZERO)).collect()
    }

    fn stream_error(&self, status: u16, message: &str) -> String {
        match self.kind {
            ProviderKind::Openai => self.frame(None, &json!({"error": openai_error(status, message)})),
            ProviderKind::Anthropic => self.frame(
                Some("error"),
                &json!({"type": "error", "error": {"type": anthropic_type(status), "message": message}}),
            ),
            ProviderKind::Gemini | ProviderKind::Simulated => {
                self.frame(None, &json!({"error": gemini_error(status, message, None)}))
            }
        }
    }
}

fn openai_error(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        401 => ("invalid_request_error", json!("invalid_api_key")),
        404 => ("invalid_request_error", json!("model_not_found")),
        429 => ("requests", json!("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", Value::Null),
        _ => ("server_error", Value::Null),
    };
    json!({"message": message, "type": kind, "param": null, "code": code})
}

fn anthropic_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

fn gemini_error(status: u16, message: &str, retry_delay: Option<&str>) -> Value {
    let name = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    let mut error = json!({"code": status, "message": message, "status": name});
    if let Some(delay) = retry_delay {
        error["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": delay,
        }]);
    }
    error
}

fn error_response(
    kind: ProviderKind,
    status: u16,
    message: &str,
    retry_after: Option<&str>,
) -> Response {
    let mut header_retry = retry_after;
    let body = match kind {
        ProviderKind::Openai => json!({"error": openai_error(status, message)}),
        ProviderKind::Anthropic => json!({
            "type": "error",
            "error": {"type": anthropic_type(status), "message": message},
            "request_id": "req_fake",
        }),
        ProviderKind::Gemini | ProviderKind::Simulated => {
            // Gemini says when to retry in the body, as a protobuf duration.
            let in_body = retry_after
                .filter(|v| v.parse::<f64>().is_ok())
                .map(|seconds| format!("{seconds}s"));
            if in_body.is_some() {
                header_retry = None;
            }
            json!({"error": gemini_error(status, message, in_body.as_deref())})
        }
    };
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(value) = header_retry {
        response = response.header("retry-after", value);
    }
    response
        .body(Body::from(body.to_string()))
        .expect("a scripted error is a valid response")
}
