//! A validated pipeline: every default applied, every dependency explicit, steps in an order
//! where each comes after the steps it depends on.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub name: String,
    pub description: Option<String>,
    pub defaults: Defaults,
    /// Declared inputs in file order.
    pub inputs: Vec<(String, InputSpec)>,
    /// Declared environment values (`{{ env.NAME }}`) with their defaults, in file order.
    pub env: Vec<(String, String)>,
    /// Steps of one run that may run at the same time.
    pub max_parallel: u32,
    /// In a dependency order (topological, ties in file order).
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defaults {
    pub provider: String,
    pub model: String,
    pub max_tokens: u32,
    pub temperature: f32,
    pub timeout_ms: u64,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub description: Option<String>,
    /// None means the input is required.
    pub default: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Total tries, including the first (1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubles for each further one.
    pub backoff_ms: u64,
    /// Upper bound for one wait.
    pub max_backoff_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub description: Option<String>,
    pub provider: String,
    pub model: String,
    /// Template source of the system prompt.
    pub system: Option<String>,
    /// Template source of the prompt.
    pub prompt: String,
    pub max_tokens: u32,
    pub temperature: f32,
    /// Prompt plus completion tokens this step may use.
    pub token_budget: Option<u32>,
    pub retry: RetryPolicy,
    pub timeout_ms: u64,
    /// Explicit `depends_on` plus the steps its templates reference, sorted by name.
    pub depends_on: Vec<String>,
}
