//! One execution with every step attempt: what the run API answers and what the dashboard's
//! step timeline and prompt inspector show.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{AttemptStatus, RunStatus};

/// An execution with all its step attempts, as `GET /api/executions/{id}` answers. Read from
/// `pipeline_executions` as it is (the steps are a second query).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow, utoipa::ToSchema))]
pub struct ExecutionDetail {
    pub id: Uuid,
    #[cfg_attr(feature = "ssr", sqlx(rename = "pipeline_name"))]
    pub pipeline: String,
    #[cfg_attr(feature = "ssr", sqlx(rename = "pipeline_version"))]
    pub version: Option<i32>,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub status: RunStatus,
    pub source: String,
    pub batch_id: Option<Uuid>,
    pub inputs: Value,
    pub config: Value,
    pub results: Option<Value>,
    pub error: Option<String>,
    pub total_tokens: i64,
    pub cost_usd: f64,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    #[cfg_attr(feature = "ssr", sqlx(skip))]
    pub steps: Vec<StepDetail>,
}

/// One attempt of one step, read from `step_executions` as it is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow, utoipa::ToSchema))]
pub struct StepDetail {
    pub id: i64,
    pub step: String,
    pub attempt: i32,
    /// The attempt this one replays.
    pub replay_of: Option<i32>,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub status: AttemptStatus,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub config: Value,
    pub system_prompt: Option<String>,
    pub template: Option<String>,
    pub variables: Option<Value>,
    pub prompt: Option<String>,
    pub response: Option<String>,
    /// For a step still streaming: the `seq` of the last chunk in `response` (which then holds
    /// the text so far); later chunks continue it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", sqlx(skip))]
    pub streamed_through: Option<i64>,
    pub token_budget: Option<i32>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub total_tokens: Option<i32>,
    pub cost_usd: Option<f64>,
    pub ttft_ms: Option<i32>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// What the dashboard's run controls ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunAction {
    Pause,
    Resume,
    Cancel,
}

impl ExecutionDetail {
    /// The run as plain text: each step attempt's figures, system prompt, prompt and response,
    /// in the order they started. What "export as text" downloads.
    pub fn transcript(&self) -> String {
        let mut out = format!(
            "{} — run {}\nstatus {} · {} tokens · ${:.4} · started {}\n",
            self.pipeline,
            self.id,
            self.status,
            self.total_tokens,
            self.cost_usd,
            self.started_at.to_rfc3339()
        );
        if let Some(error) = &self.error {
            out.push_str(&format!("error: {error}\n"));
        }
        for step in &self.steps {
            let attempt = match (step.attempt, step.replay_of) {
                (_, Some(of)) => format!(" (attempt {}, replay of {of})", step.attempt),
                (1, None) => String::new(),
                (n, None) => format!(" (attempt {n})"),
            };
            out.push_str(&format!(
                "\n== {}{attempt} ==\n{} · {} · {} · {} prompt + {} completion tokens\n",
                step.step,
                step.status,
                step.provider.as_deref().unwrap_or("-"),
                step.model.as_deref().unwrap_or("-"),
                step.prompt_tokens.unwrap_or(0),
                step.completion_tokens.unwrap_or(0),
            ));
            if let Some(error) = &step.error {
                out.push_str(&format!("error: {error}\n"));
            }
            for (label, text) in [
                ("system", &step.system_prompt),
                ("prompt", &step.prompt),
                ("response", &step.response),
            ] {
                if let Some(text) = text {
                    out.push_str(&format!("\n-- {label} --\n{text}\n"));
                }
            }
        }
        out
    }
}
