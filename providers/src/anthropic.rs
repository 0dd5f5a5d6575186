//! Anthropic's Messages API, streaming.

use eventsource_stream::Event;
use serde::{Deserialize, Serialize};

use crate::{
    config::HttpConfig,
    http::{self, Defaults, Endpoint, ErrorDetail, WireFormat},
    ChatRequest, Delta, DeltaStream, ErrorKind, Provider, ProviderError, ProviderKind, Usage,
};

const DEFAULTS: Defaults = Defaults {
    label: "Anthropic",
    base_url: "https://api.anthropic.com",
    base_url_env: "ANTHROPIC_BASE_URL",
    key_envs: &["ANTHROPIC_API_KEY"],
};

/// The API version whose event format the parser below follows.
const API_VERSION: &str = "2023-06-01";

#[derive(Debug)]
pub struct Anthropic {
    endpoint: Endpoint,
}

impl Anthropic {
    /// `instance` names the config section in messages; `env` reads ANTHROPIC_API_KEY (or
    /// `api_key_env`) and ANTHROPIC_BASE_URL when the config does not say.
    pub fn new(
        instance: &str,
        config: &HttpConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        Ok(Self {
            endpoint: Endpoint::new(instance, config, env, &DEFAULTS)?,
        })
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    messages: [Message<'a>; 1],
    temperature: f32,
    stream: bool,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[async_trait::async_trait]
impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn connection(&self) -> Option<crate::Connection> {
        Some(self.endpoint.connection())
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError> {
        let key = self.endpoint.require_key()?;
        let body = Body {
            model: &request.model,
            max_tokens: request.max_tokens,
            system: request.system.as_deref(),
            messages: [Message {
                role: "user",
                content: &request.prompt,
            }],
            temperature: request.temperature,
            stream: true,
        };
        let url = self.endpoint.url("/v1/messages");
        let call = self
            .endpoint
            .post(&url)
            .header("x-api-key", key)
            .header("anthropic-version", API_VERSION)
            .json(&body);
        let response = self.endpoint.send(&url, call, parse_error).await?;
        Ok(http::read_events(
            response,
            Events::default(),
            self.endpoint.label,
        ))
    }
}

/// `{"type": "error", "error": {"type": "rate_limit_error", "message": "…"}}`, the body of a
/// refused request and the data of an in-stream `error` event alike.
#[derive(Deserialize)]
struct ErrorBody {
    error: WireError,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

impl WireError {
    fn message(&self) -> String {
        format!("{} ({})", self.message, self.kind)
    }

    /// For an in-stream error, where there is no status to go by.
    fn kind(&self) -> ErrorKind {
        match self.kind.as_str() {
            "rate_limit_error" => ErrorKind::RateLimited,
            "authentication_error" | "permission_error" => ErrorKind::Auth,
            "invalid_request_error" | "not_found_error" | "request_too_large" => {
                ErrorKind::InvalidRequest
            }
            // overloaded_error, api_error, and whatever is added later: worth a retry.
            _ => ErrorKind::Server,
        }
    }
}

fn parse_error(body: &str) -> Option<ErrorDetail> {
    let body: ErrorBody = serde_json::from_str(body).ok()?;
    Some(ErrorDetail {
        message: body.error.message(),
        retry_after: None,
        kind: None,
    })
}

/// The fields of every event type this parser reads; the rest are ignored, so new event and
/// delta types (thinking, tool use) pass through harmlessly.
#[derive(Deserialize)]
struct WireEvent {
    #[serde(rename = "type")]
    kind: String,
    message: Option<StartMessage>,
    delta: Option<WireDelta>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct StartMessage {
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<u32>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u32>,
    #[serde(default)]
    cache_read_input_tokens: Option<u32>,
    output_tokens: Option<u32>,
}

/// `message_start` (prompt tokens), `content_block_delta` (text), `message_delta` (output
/// tokens so far), `message_stop` (the end), `ping`, `error`.
#[derive(Default)]
struct Events {
    usage: Usage,
}

impl Events {
    fn take_usage(&mut self, usage: &WireUsage) {
        // Cached prompt tokens are reported apart from `input_tokens` but are still prompt.
        let prompt = [
            usage.input_tokens,
            usage.cache_creation_input_tokens,
            usage.cache_read_input_tokens,
        ];
        if prompt.iter().any(Option::is_some) {
            self.usage.prompt_tokens = prompt.iter().flatten().sum();
        }
        if let Some(output) = usage.output_tokens {
            // Counts are cumulative: the last one is the total.
            self.usage.completion_tokens = output;
        }
    }
}

impl WireFormat for Events {
    fn on_event(&mut self, event: &Event, out: &mut Vec<Delta>) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        let parsed: WireEvent = serde_json::from_str(data)
            .map_err(|_| http::malformed(DEFAULTS.label, "an event that is not JSON", data))?;
        match parsed.kind.as_str() {
            "message_start" => {
                if let Some(usage) = parsed.message.and_then(|m| m.usage) {
                    self.take_usage(&usage);
                }
            }
            "content_block_delta" => {
                if let Some(WireDelta {
                    kind: Some(kind),
                    text: Some(text),
                }) = parsed.delta
                {
                    if kind == "text_delta" && !text.is_empty() {
                        out.push(Delta::Text(text));
                    }
                }
            }
            "message_delta" => {
                if let Some(usage) = parsed.usage {
                    self.take_usage(&usage);
                }
            }
            "message_stop" => {
                out.push(Delta::Usage(self.usage));
                return Ok(true);
            }
            "error" => {
                let error = parsed.error.ok_or_else(|| {
                    http::malformed(DEFAULTS.label, "an error event without an error", data)
                })?;
                return Err(ProviderError {
                    kind: error.kind(),
                    message: format!("Anthropic stopped with an error: {}", error.message()),
                    retry_after: None,
                });
            }
            // ping, content_block_start/stop, and event types added after this was written.
            _ => {}
        }
        Ok(false)
    }

    fn on_end(&mut self, _out: &mut Vec<Delta>) -> Result<(), ProviderError> {
        Err(http::cut_short(DEFAULTS.label))
    }
}
