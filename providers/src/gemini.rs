//! Google's Gemini API (`streamGenerateContent` with `alt=sse`).

use std::time::Duration;

use eventsource_stream::Event;
use serde::{Deserialize, Serialize};

use crate::{
    config::HttpConfig,
    http::{self, Defaults, Endpoint, ErrorDetail, WireFormat},
    ChatRequest, Delta, DeltaStream, ErrorKind, Provider, ProviderError, ProviderKind, Usage,
};

const DEFAULTS: Defaults = Defaults {
    label: "Gemini",
    base_url: "https://generativelanguage.googleapis.com",
    base_url_env: "GEMINI_BASE_URL",
    // Google's own SDKs read either.
    key_envs: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
};

#[derive(Debug)]
pub struct Gemini {
    endpoint: Endpoint,
}

impl Gemini {
    /// `instance` names the config section in messages; `env` reads GEMINI_API_KEY or
    /// GOOGLE_API_KEY (or `api_key_env`) and GEMINI_BASE_URL when the config does not say.
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
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    contents: [Content<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content<'a>>,
    generation_config: GenerationConfig,
}

#[derive(Serialize)]
struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    parts: [Part<'a>; 1],
}

#[derive(Serialize)]
struct Part<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    max_output_tokens: u32,
    temperature: f32,
}

#[async_trait::async_trait]
impl Provider for Gemini {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    fn connection(&self) -> Option<crate::Connection> {
        Some(self.endpoint.connection())
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError> {
        let key = self.endpoint.require_key()?;
        let body = Body {
            contents: [Content {
                role: Some("user"),
                parts: [Part {
                    text: &request.prompt,
                }],
            }],
            system_instruction: request.system.as_deref().map(|system| Content {
                role: None,
                parts: [Part { text: system }],
            }),
            generation_config: GenerationConfig {
                max_output_tokens: request.max_tokens,
                temperature: request.temperature,
            },
        };
        // Names from the models list come as `models/gemini-…`.
        let model = request
            .model
            .strip_prefix("models/")
            .unwrap_or(&request.model);
        let url = self.endpoint.url(&format!(
            "/v1beta/models/{model}:streamGenerateContent?alt=sse"
        ));
        // The key goes in a header, not the `key=` query parameter, so it can never show up in
        // a URL quoted by an error message.
        let call = self
            .endpoint
            .post(&url)
            .header("x-goog-api-key", key)
            .json(&body);
        let response = self.endpoint.send(&url, call, parse_error).await?;
        Ok(http::read_events(
            response,
            Chunks::default(),
            self.endpoint.label,
        ))
    }
}

/// `{"error": {"code": 429, "message": "…", "status": "RESOURCE_EXHAUSTED", "details": […]}}`;
/// the streaming endpoint sometimes wraps it in an array.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorBody {
    One { error: WireError },
    Many(Vec<ErrorBody>),
}

impl ErrorBody {
    fn into_error(self) -> Option<WireError> {
        match self {
            Self::One { error } => Some(error),
            Self::Many(bodies) => bodies.into_iter().next()?.into_error(),
        }
    }
}

#[derive(Deserialize)]
struct WireError {
    message: Option<String>,
    status: Option<String>,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

impl WireError {
    fn message(&self) -> String {
        let message = self.message.as_deref().unwrap_or("(no message)");
        match &self.status {
            Some(status) => format!("{message} ({status})"),
            None => message.to_owned(),
        }
    }

    /// `RetryInfo.retryDelay`, which Gemini sends with RESOURCE_EXHAUSTED instead of a header.
    fn retry_delay(&self) -> Option<Duration> {
        self.details.iter().find_map(|detail| {
            let is_retry_info = detail
                .get("@type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"));
            let delay = detail.get("retryDelay")?.as_str()?;
            is_retry_info
                .then(|| http::parse_proto_duration(delay))
                .flatten()
        })
    }

    /// For an in-stream error, where there is no status code to go by.
    fn kind(&self) -> ErrorKind {
        match self.status.as_deref() {
            Some("RESOURCE_EXHAUSTED") => ErrorKind::RateLimited,
            Some("UNAUTHENTICATED" | "PERMISSION_DENIED") => ErrorKind::Auth,
            Some("INVALID_ARGUMENT" | "NOT_FOUND" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => {
                ErrorKind::InvalidRequest
            }
            _ => ErrorKind::Server,
        }
    }
}

fn parse_error(body: &str) -> Option<ErrorDetail> {
    let error = serde_json::from_str::<ErrorBody>(body).ok()?.into_error()?;
    Some(ErrorDetail {
        message: error.message(),
        retry_after: error.retry_delay(),
        kind: None,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<UsageMetadata>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<CandidateContent>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<WirePart>,
}

#[derive(Deserialize)]
struct WirePart {
    text: Option<String>,
    /// Thought summaries, sent only when asked for; not part of the answer.
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: Option<u32>,
    candidates_token_count: Option<u32>,
    thoughts_token_count: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

/// `data: {GenerateContentResponse}` events. There is no terminal event: the chunk carrying a
/// `finishReason` is the last, and the body then ends.
#[derive(Default)]
struct Chunks {
    usage: Usage,
    finished: bool,
}

impl WireFormat for Chunks {
    fn on_event(&mut self, event: &Event, out: &mut Vec<Delta>) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: Chunk = serde_json::from_str(data)
            .map_err(|_| http::malformed(DEFAULTS.label, "a chunk that is not JSON", data))?;
        if let Some(error) = chunk.error {
            return Err(ProviderError {
                kind: error.kind(),
                message: format!("Gemini stopped with an error: {}", error.message()),
                retry_after: error.retry_delay(),
            });
        }
        if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
            return Err(ProviderError {
                kind: ErrorKind::InvalidRequest,
                message: format!("Gemini refused the prompt (blockReason {reason})"),
                retry_after: None,
            });
        }
        if let Some(usage) = chunk.usage_metadata {
            if let Some(prompt) = usage.prompt_token_count {
                self.usage.prompt_tokens = prompt;
            }
            // Thinking tokens are billed as output but counted apart from the answer's.
            if usage.candidates_token_count.is_some() || usage.thoughts_token_count.is_some() {
                self.usage.completion_tokens = usage.candidates_token_count.unwrap_or(0)
                    + usage.thoughts_token_count.unwrap_or(0);
            }
        }
        if let Some(candidate) = chunk.candidates.into_iter().next() {
            let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
            for part in parts.into_iter().filter(|part| !part.thought) {
                if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    out.push(Delta::Text(text));
                }
            }
            if candidate.finish_reason.is_some() {
                self.finished = true;
            }
        }
        // Keep reading after the finish reason: usage may still follow, and the body ends
        // right after.
        Ok(false)
    }

    fn on_end(&mut self, out: &mut Vec<Delta>) -> Result<(), ProviderError> {
        if !self.finished {
            return Err(http::cut_short(DEFAULTS.label));
        }
        out.push(Delta::Usage(self.usage));
        Ok(())
    }
}
