//! The event taxonomy: everything pipescope shows live is one of these. Defined once; the
//! engine and the ingest API produce them, the bus numbers them, the store persists them, the
//! SSE endpoint sends them and the browser applies them.
//!
//! On the wire an event is `{"seq": 42, "at": "…", "event": "step:started", "data": {…}}`;
//! over SSE the `seq` is also the `id:` line and the name the `event:` line.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A numbered, timestamped event as subscribers receive it. Read by hand
/// (`models::event_reading`), as is [`EventBody`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Position in the bus: unique across instances sharing a database, increasing.
    pub seq: i64,
    /// When it happened (the publisher's clock, or the ingest client's).
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    pub fn name(&self) -> &'static str {
        self.body.name()
    }
}

/// The execution an event concerns, and the step, for filtering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scope<'a> {
    pub execution_id: Option<Uuid>,
    pub step: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "data")]
pub enum EventBody {
    #[serde(rename = "pipeline:started")]
    PipelineStarted(PipelineStarted),
    #[serde(rename = "pipeline:paused")]
    PipelinePaused(RunTransition),
    #[serde(rename = "pipeline:resumed")]
    PipelineResumed(RunTransition),
    #[serde(rename = "pipeline:cancelled")]
    PipelineCancelled(RunTransition),
    #[serde(rename = "pipeline:completed")]
    PipelineCompleted(PipelineCompleted),
    #[serde(rename = "pipeline:error")]
    PipelineError(PipelineError),
    #[serde(rename = "step:started")]
    StepStarted(StepStarted),
    #[serde(rename = "step:progress")]
    StepProgress(StepProgress),
    #[serde(rename = "prompt:sent")]
    PromptSent(PromptSent),
    #[serde(rename = "response:streaming")]
    ResponseStreaming(ResponseStreaming),
    #[serde(rename = "response:received")]
    ResponseReceived(ResponseReceived),
    #[serde(rename = "step:completed")]
    StepCompleted(StepCompleted),
    #[serde(rename = "metrics:updated")]
    MetricsUpdated(Metrics),
    #[serde(rename = "log:entry")]
    LogEntry(LogEntry),
    #[serde(rename = "bus:heartbeat")]
    BusHeartbeat(Heartbeat),
    /// The subscriber missed events it cannot be given back: reload the snapshot.
    #[serde(rename = "bus:resync")]
    BusResync(Resync),
}

/// Every event name, in taxonomy order.
pub const EVENT_NAMES: [&str; 16] = [
    "pipeline:started",
    "pipeline:paused",
    "pipeline:resumed",
    "pipeline:cancelled",
    "pipeline:completed",
    "pipeline:error",
    "step:started",
    "step:progress",
    "prompt:sent",
    "response:streaming",
    "response:received",
    "step:completed",
    "metrics:updated",
    "log:entry",
    "bus:heartbeat",
    "bus:resync",
];

impl EventBody {
    pub fn name(&self) -> &'static str {
        use EventBody::*;
        match self {
            PipelineStarted(_) => "pipeline:started",
            PipelinePaused(_) => "pipeline:paused",
            PipelineResumed(_) => "pipeline:resumed",
            PipelineCancelled(_) => "pipeline:cancelled",
            PipelineCompleted(_) => "pipeline:completed",
            PipelineError(_) => "pipeline:error",
            StepStarted(_) => "step:started",
            StepProgress(_) => "step:progress",
            PromptSent(_) => "prompt:sent",
            ResponseStreaming(_) => "response:streaming",
            ResponseReceived(_) => "response:received",
            StepCompleted(_) => "step:completed",
            MetricsUpdated(_) => "metrics:updated",
            LogEntry(_) => "log:entry",
            BusHeartbeat(_) => "bus:heartbeat",
            BusResync(_) => "bus:resync",
        }
    }

    /// Streamed chunks, progress and the bus's own signals are broadcast only; everything
    /// else is written to the store.
    pub fn is_persisted(&self) -> bool {
        !matches!(
            self,
            EventBody::ResponseStreaming(_)
                | EventBody::StepProgress(_)
                | EventBody::MetricsUpdated(_)
                | EventBody::BusHeartbeat(_)
                | EventBody::BusResync(_)
        )
    }

    /// Events after which an execution's state must be on disk before anyone reads it.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            EventBody::PipelineCompleted(_)
                | EventBody::PipelineError(_)
                | EventBody::PipelineCancelled(_)
        )
    }

    /// Only these may be sent through the ingest API; the bus makes the others itself.
    pub fn is_ingestible(&self) -> bool {
        !matches!(
            self,
            EventBody::MetricsUpdated(_) | EventBody::BusHeartbeat(_) | EventBody::BusResync(_)
        )
    }

    pub fn scope(&self) -> Scope<'_> {
        use EventBody::*;
        let (execution_id, step) = match self {
            PipelineStarted(e) => (Some(e.execution_id), None),
            PipelinePaused(e) | PipelineResumed(e) | PipelineCancelled(e) => {
                (Some(e.execution_id), None)
            }
            PipelineCompleted(e) => (Some(e.execution_id), None),
            PipelineError(e) => (Some(e.execution_id), e.step.as_deref()),
            StepStarted(e) => (Some(e.execution_id), Some(e.step.as_str())),
            StepProgress(e) => (Some(e.execution_id), Some(e.step.as_str())),
            PromptSent(e) => (Some(e.execution_id), Some(e.step.as_str())),
            ResponseStreaming(e) => (Some(e.execution_id), Some(e.step.as_str())),
            ResponseReceived(e) => (Some(e.execution_id), Some(e.step.as_str())),
            StepCompleted(e) => (Some(e.execution_id), Some(e.step.as_str())),
            LogEntry(e) => (e.context.execution_id, e.context.step.as_deref()),
            MetricsUpdated(_) | BusHeartbeat(_) | BusResync(_) => (None, None),
        };
        Scope { execution_id, step }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineStarted {
    pub execution_id: Uuid,
    pub pipeline: String,
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub inputs: Value,
    pub started_at: DateTime<Utc>,
    /// Version of the stored pipeline definition that runs (engine runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The batch this run belongs to, when it was started as one of a list of input sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<Uuid>,
}

/// Pause, resume and cancel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunTransition {
    pub execution_id: Uuid,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineCompleted {
    pub execution_id: Uuid,
    #[serde(default)]
    pub results: Value,
    pub totals: Totals,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    pub tokens: u64,
    pub cost_usd: f64,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineError {
    pub execution_id: Uuid,
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepStarted {
    pub execution_id: Uuid,
    pub step: String,
    pub provider: String,
    pub model: String,
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<u32>,
    /// The attempt this one replays (with an edited prompt or another model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<u32>,
    /// The step's parameters as run (max_tokens, temperature, retry, timeout, dependencies).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub config: Value,
}

fn first_attempt() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepProgress {
    pub execution_id: Uuid,
    pub step: String,
    pub tokens_used: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSent {
    pub execution_id: Uuid,
    pub step: String,
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub variables: Value,
    pub token_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseStreaming {
    pub execution_id: Uuid,
    pub step: String,
    pub chunk: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseReceived {
    pub execution_id: Uuid,
    pub step: String,
    pub response: String,
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Completed,
    Failed,
    Cancelled,
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepCompleted {
    pub execution_id: Uuid,
    pub step: String,
    pub duration_ms: u64,
    pub tokens: u32,
    pub cost_usd: f64,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Live totals, sent at most every 500 ms while anything changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub tokens_total: u64,
    pub cost_total_usd: f64,
    pub running: u32,
    /// Failed share of the steps finished in the last minute (0–1).
    pub error_rate: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Steps finished in the last minute.
    pub throughput_per_min: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    /// The level named `name` as stored and sent (`"warn"`), if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

// Rows decode the `level` column through this (`#[sqlx(try_from = "String")]`).
impl TryFrom<String> for LogLevel {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Self::parse(&name).ok_or_else(|| format!("unknown log level {name:?}"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    pub level: LogLevel,
    pub message: String,
    pub timestamp: DateTime<Utc>,
    #[serde(default)]
    pub context: LogContext,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Structured context (`{"attempt": 2, "status": 429}`), stored in `log_entries.context`
    /// and shown as key/value. A plain JSON map: no type of its own to deserialise.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resync {
    pub reason: String,
    /// Events this subscriber lost, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_names_the_event_and_nests_its_data() {
        let event = Event {
            seq: 7,
            at: DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
                .expect("date")
                .with_timezone(&Utc),
            body: EventBody::StepProgress(StepProgress {
                execution_id: Uuid::nil(),
                step: "draft".into(),
                tokens_used: 12,
            }),
        };
        let json = serde_json::to_value(&event).expect("serialise");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["event"], "step:progress");
        assert_eq!(json["data"]["tokens_used"], 12);
        let back: Event = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, event);
    }

    #[test]
    fn a_log_line_carries_fields_only_when_it_has_some() {
        let plain = r#"{"event":"log:entry","data":{"level":"info","message":"m","timestamp":"2026-11-25T10:00:00Z","context":{"step":"draft"}}}"#;
        let body: EventBody = serde_json::from_str(plain).expect("a line without fields");
        assert_eq!(serde_json::to_string(&body).expect("serialise"), plain);

        let rich = r#"{"event":"log:entry","data":{"level":"warn","message":"m","timestamp":"2026-11-25T10:00:00Z","context":{"fields":{"attempt":2,"status":429}}}}"#;
        let EventBody::LogEntry(entry) = serde_json::from_str(rich).expect("a line with fields")
        else {
            panic!("a log line");
        };
        assert_eq!(entry.context.fields["status"], 429);
        assert_eq!(LogLevel::parse("warn"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::parse("WARN"), None);
    }

    #[test]
    fn every_name_round_trips() {
        for name in EVENT_NAMES {
            let json = format!(r#"{{"event":"{name}","data":{{}}}}"#);
            let error = serde_json::from_str::<EventBody>(&json).err();
            // Payloads are empty, so each fails on a field — never on the name.
            if let Some(error) = error {
                assert!(
                    !error.to_string().contains("unknown variant"),
                    "{name}: {error}"
                );
            }
        }
    }
}
