//! A failed call, classified so the engine knows whether to retry.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 429 or the provider's rate-limit error; retry after `retry_after` when given.
    RateLimited,
    /// 5xx, "overloaded": retryable.
    Server,
    /// Connection refused/reset, or the stream ended before the response was complete: retryable.
    Network,
    /// 401/403 or a missing API key: fix the configuration.
    Auth,
    /// 400/404/422: the request itself is wrong (unknown model, bad parameter).
    InvalidRequest,
    /// The provider sent something that is not its documented format.
    Malformed,
    /// The account is out of quota or credit (OpenAI's 429 `insufficient_quota`): waiting does
    /// not help, the plan or billing must change.
    Quota,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// What happened, including the provider's own message when it sent one.
    pub message: String,
    /// From a `retry-after` header or the provider's error body.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Network
        )
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProviderError {}
