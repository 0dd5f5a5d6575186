//! LLM provider clients, all streaming: OpenAI-compatible chat completions, Anthropic Messages,
//! Gemini, and `simulated` (offline, deterministic, what the demo and the tests run). Also the
//! token counter used before a prompt is sent and the price table behind every cost figure.
//!
//! The engine owns retries, timeouts and events; a provider only turns one request into a
//! stream of [`Delta`]s or a classified [`ProviderError`].

pub mod anthropic;
pub mod config;
pub mod error;
#[cfg(feature = "fakes")]
pub mod fakes;
pub mod gemini;
mod http;
pub mod openai;
pub mod prices;
pub mod registry;
pub mod simulated;
pub mod tokens;

use std::{fmt::Debug, pin::Pin};

use futures::Stream;
use serde::{Deserialize, Serialize};

pub use anthropic::Anthropic;
pub use config::{HttpConfig, ProviderConfig, SimulatedConfig};
pub use error::{ErrorKind, ProviderError};
pub use gemini::Gemini;
pub use openai::OpenAi;
pub use prices::{Price, PriceTable};
pub use registry::Registry;
pub use simulated::Simulated;

/// One call to a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub system: Option<String>,
    pub prompt: String,
    pub max_tokens: u32,
    pub temperature: f32,
    /// Varies the simulated provider's text between calls (the engine derives it from the
    /// execution, step and attempt); real providers ignore it.
    pub seed: u64,
}

/// What a response stream yields, in order: text as it arrives, and the usage block when the
/// provider reports one (usually last). The stream ends after the last delta.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
    Usage(Usage),
}

/// Token usage as the provider reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

pub type DeltaStream = Pin<Box<dyn Stream<Item = Result<Delta, ProviderError>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    Gemini,
    Simulated,
}

impl ProviderKind {
    /// The name used in config files and price rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Simulated => "simulated",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An HTTP instance's connection as a reader may see it: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub base_url: String,
    pub key_set: bool,
    /// Where the key is read from, set or not: `environment OPENAI_API_KEY` or `config file`.
    pub key_source: String,
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync + Debug {
    fn kind(&self) -> ProviderKind;

    /// Where this instance sends its requests and whether it has a key, for the providers page;
    /// None for one that reaches nothing over the network (the simulated provider).
    fn connection(&self) -> Option<Connection> {
        None
    }

    /// Sends the request. Resolves once the response has started (errors such as 401 or 429
    /// surface here); the stream then yields the response as it arrives. Dropping the stream
    /// aborts the request.
    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError>;
}
