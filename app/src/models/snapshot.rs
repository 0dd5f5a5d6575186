use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::RunStatus;

/// Everything the dashboard shows, as of one point of the event stream: the first paint, and
/// what a client reloads after `bus:resync`. Subscribing with `seq` as Last-Event-ID continues
/// exactly from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last event reflected in this snapshot (`None` before the first event).
    pub seq: Option<i64>,
    pub taken_at: DateTime<Utc>,
    /// Pending, running and paused executions, newest first.
    pub active: Vec<RunSummary>,
    /// The most recently started finished executions, newest first.
    pub recent: Vec<RunSummary>,
    pub totals: StoreTotals,
    /// The latest log lines, oldest first.
    pub logs: Vec<LogLine>,
    /// The latest metrics (the charts' history), oldest first.
    #[serde(default)]
    pub metrics: Vec<MetricsSample>,
}

/// Live totals at one moment: a `metrics_snapshots` row, or a `metrics:updated` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow, utoipa::ToSchema))]
pub struct MetricsSample {
    pub at: DateTime<Utc>,
    pub tokens_total: i64,
    pub cost_total_usd: f64,
    pub running: i64,
    pub error_rate: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub throughput_per_min: f64,
}

/// A run as the dashboard's grid shows it, read by the overview query as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow, utoipa::ToSchema))]
pub struct RunSummary {
    pub id: Uuid,
    #[cfg_attr(feature = "ssr", sqlx(rename = "pipeline_name"))]
    pub pipeline: String,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub status: RunStatus,
    /// `engine` (run here) or `ingest` (reported by another program).
    pub source: String,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The step running now, if any.
    pub current_step: Option<String>,
    pub steps_started: i64,
    pub steps_completed: i64,
    /// Steps the pipeline has (0 when unknown, e.g. ingested runs).
    #[serde(default)]
    pub steps_total: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StoreTotals {
    pub executions: i64,
    pub running: i64,
    pub tokens: i64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct LogLine {
    pub level: String,
    pub message: String,
    pub logged_at: DateTime<Utc>,
    pub execution_id: Option<Uuid>,
    #[cfg_attr(feature = "ssr", sqlx(rename = "step_name"))]
    pub step: Option<String>,
}
