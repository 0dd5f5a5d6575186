//! OpenAI-compatible chat completions, streaming: OpenAI itself, and local servers speaking the
//! same API (Ollama, vLLM, llama.cpp) through a base URL.

use eventsource_stream::Event;
use serde::{Deserialize, Serialize};

use crate::{
    config::HttpConfig,
    http::{self, Defaults, Endpoint, ErrorDetail, WireFormat},
    ChatRequest, Delta, DeltaStream, ErrorKind, Provider, ProviderError, ProviderKind, Usage,
};

const DEFAULTS: Defaults = Defaults {
    label: "OpenAI",
    base_url: "https://api.openai.com/v1",
    base_url_env: "OPENAI_BASE_URL",
    key_envs: &["OPENAI_API_KEY"],
};

#[derive(Debug)]
pub struct OpenAi {
    endpoint: Endpoint,
    /// api.openai.com, as opposed to a compatible server: decides whether a key is required
    /// and which parameter names it accepts.
    official: bool,
}

impl OpenAi {
    /// `instance` names the config section in messages; `env` reads OPENAI_API_KEY (or
    /// `api_key_env`) and OPENAI_BASE_URL when the config does not say.
    pub fn new(
        instance: &str,
        config: &HttpConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let endpoint = Endpoint::new(instance, config, env, &DEFAULTS)?;
        let official = endpoint.base_url().host_str() == Some("api.openai.com");
        Ok(Self { endpoint, official })
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    /// OpenAI deprecated `max_tokens` (reasoning models reject it); compatible servers mostly
    /// know only the old name.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    /// Without it a streamed response carries no token counts.
    include_usage: bool,
}

/// Reasoning models (o-series, gpt-5) answer 400 to any temperature but the default, so it
/// is left out for them rather than failing every call.
fn takes_temperature(model: &str) -> bool {
    !["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|family| model.starts_with(family))
        || model.starts_with("gpt-5-chat")
}

fn body(request: &ChatRequest, official: bool) -> Body<'_> {
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = request.system.as_deref() {
        messages.push(Message {
            role: "system",
            content: system,
        });
    }
    messages.push(Message {
        role: "user",
        content: &request.prompt,
    });
    Body {
        model: &request.model,
        messages,
        temperature: (!official || takes_temperature(&request.model))
            .then_some(request.temperature),
        max_completion_tokens: official.then_some(request.max_tokens),
        max_tokens: (!official).then_some(request.max_tokens),
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
    }
}

#[async_trait::async_trait]
impl Provider for OpenAi {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }

    fn connection(&self) -> Option<crate::Connection> {
        Some(self.endpoint.connection())
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError> {
        // Local servers take no key; OpenAI itself would only answer 401 without one.
        let key = if self.official {
            Some(self.endpoint.require_key()?)
        } else {
            self.endpoint.key()
        };
        let body = body(&request, self.official);
        let url = self.endpoint.url("/chat/completions");
        let mut call = self.endpoint.post(&url).json(&body);
        if let Some(key) = key {
            call = call.bearer_auth(key);
        }
        let response = self.endpoint.send(&url, call, parse_error).await?;
        Ok(http::read_events(response, Chunks, self.endpoint.label))
    }
}

/// `{"error": {"message": …, "type": …, "code": …}}`; some compatible servers send
/// `{"error": "…"}`.
fn parse_error(body: &str) -> Option<ErrorDetail> {
    let body: ErrorBody = serde_json::from_str(body).ok()?;
    Some(ErrorDetail {
        message: body.error.message(),
        retry_after: None,
        // A 429 that no wait cures: say so, so the step fails now instead of retrying.
        kind: body.error.is_quota().then_some(ErrorKind::Quota),
    })
}

#[derive(Deserialize)]
struct ErrorBody {
    error: WireError,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireError {
    Object {
        message: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        code: Option<serde_json::Value>,
    },
    Text(String),
}

impl WireError {
    fn message(&self) -> String {
        match self {
            Self::Object {
                message,
                kind,
                code,
            } => {
                let mut text = message.clone().unwrap_or_else(|| "(no message)".to_owned());
                // The code says more than the type when both are present (`rate_limit_exceeded`
                // vs `requests`).
                let tag = code
                    .as_ref()
                    .and_then(|code| match code {
                        serde_json::Value::String(s) => Some(s.clone()),
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .or_else(|| kind.clone());
                if let Some(tag) = tag {
                    text.push_str(&format!(" ({tag})"));
                }
                text
            }
            Self::Text(text) => text.clone(),
        }
    }

    /// `type` and `code`, the two places OpenAI puts an error's kind.
    fn tags(&self) -> [&str; 2] {
        match self {
            Self::Object { kind, code, .. } => [
                kind.as_deref().unwrap_or_default(),
                code.as_ref().and_then(|c| c.as_str()).unwrap_or_default(),
            ],
            Self::Text(_) => ["", ""],
        }
    }

    fn is_quota(&self) -> bool {
        self.tags().contains(&"insufficient_quota")
    }

    /// For an error sent inside a stream, where there is no status to go by.
    fn kind(&self) -> ErrorKind {
        let tags = self.tags();
        if self.is_quota() {
            ErrorKind::Quota
        } else if tags.iter().any(|t| t.contains("rate_limit")) {
            ErrorKind::RateLimited
        } else if tags.contains(&"invalid_request_error") {
            ErrorKind::InvalidRequest
        } else {
            ErrorKind::Server
        }
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Option<ChoiceDelta>,
}

#[derive(Deserialize)]
struct ChoiceDelta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
}

/// `data: {chunk}` events, the usage chunk (empty `choices`) and `data: [DONE]`.
struct Chunks;

impl WireFormat for Chunks {
    fn on_event(&mut self, event: &Event, out: &mut Vec<Delta>) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: Chunk = serde_json::from_str(data)
            .map_err(|_| http::malformed(DEFAULTS.label, "a chunk that is not JSON", data))?;
        if let Some(error) = chunk.error {
            return Err(ProviderError {
                kind: error.kind(),
                message: format!("OpenAI stopped with an error: {}", error.message()),
                retry_after: None,
            });
        }
        // One choice is asked for (no `n`); the usage chunk has none.
        if let Some(text) = chunk
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.delta)
            .and_then(|delta| delta.content)
            .filter(|text| !text.is_empty())
        {
            out.push(Delta::Text(text));
        }
        if let Some(usage) = chunk.usage {
            out.push(Delta::Usage(Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            }));
        }
        Ok(false)
    }

    fn on_end(&mut self, _out: &mut Vec<Delta>) -> Result<(), ProviderError> {
        Err(http::cut_short(DEFAULTS.label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(model: &str, official: bool) -> serde_json::Value {
        let request = ChatRequest {
            model: model.to_owned(),
            system: None,
            prompt: "hi".to_owned(),
            max_tokens: 100,
            temperature: 0.5,
            seed: 0,
        };
        serde_json::to_value(body(&request, official)).expect("serialisable")
    }

    #[test]
    fn openai_itself_gets_max_completion_tokens() {
        let body = sent("gpt-4o", true);
        assert_eq!(body["max_completion_tokens"], 100);
        assert!(body.get("max_tokens").is_none());
        assert_eq!(body["temperature"], 0.5);
    }

    #[test]
    fn reasoning_models_get_no_temperature() {
        for model in ["o3", "o4-mini", "gpt-5", "gpt-5-mini"] {
            assert!(sent(model, true).get("temperature").is_none(), "{model}");
        }
        assert_eq!(sent("gpt-5-chat-latest", true)["temperature"], 0.5);
        // Other servers decide for themselves.
        assert_eq!(sent("o3", false)["temperature"], 0.5);
    }
}
