//! Provider instances as written in the server's config file (`[providers.<name>]`, TOML), e.g.
//!
//! ```toml
//! [providers.local-llama]
//! kind = "openai"
//! base_url = "http://localhost:11434/v1"
//!
//! [providers.flaky]
//! kind = "simulated"
//! error_rate = 0.2
//! ```

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ProviderConfig {
    Openai(HttpConfig),
    Anthropic(HttpConfig),
    Gemini(HttpConfig),
    Simulated(SimulatedConfig),
}

/// A provider reached over HTTP.
#[derive(Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Defaults to the provider's public API.
    pub base_url: Option<String>,
    /// The key itself (prefer `api_key_env`).
    pub api_key: Option<String>,
    /// Environment variable holding the key; defaults to OPENAI_API_KEY, ANTHROPIC_API_KEY or
    /// GEMINI_API_KEY.
    pub api_key_env: Option<String>,
}

impl std::fmt::Debug for HttpConfig {
    // Keys never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_key_env", &self.api_key_env)
            .finish()
    }
}

/// The offline provider: deterministic for a seed, streaming at a set pace, failing on request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatedConfig {
    /// Streaming pace; 0 streams as fast as possible.
    pub tokens_per_second: f64,
    /// Delay before the first token.
    pub first_token_ms: u64,
    pub seed: u64,
    /// Share of calls (0–1) that fail part-way with a server error.
    pub error_rate: f64,
    /// Share of calls answered with a rate-limit error carrying `retry_after_ms`.
    pub rate_limit_rate: f64,
    pub retry_after_ms: u64,
    /// Share of calls that stop sending without finishing (the engine's timeout ends them).
    pub stall_rate: f64,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self {
            tokens_per_second: 40.0,
            first_token_ms: 300,
            seed: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_ms: 1000,
            stall_rate: 0.0,
        }
    }
}
