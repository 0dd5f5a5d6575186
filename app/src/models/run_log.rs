//! A run's log: one line per thing that happened to it, as the dashboard's log area shows it.
//! Built from the run's events — stored ones for the history, live ones as they arrive — so the
//! same event always reads the same way.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Event, EventBody, LogLevel, StepStatus};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLogLine {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub level: LogLevel,
    pub step: Option<String>,
    pub text: String,
}

impl RunLogLine {
    /// The line for `event`; none for chunks, progress and bus events, which would drown the rest.
    pub fn of(event: &Event) -> Option<RunLogLine> {
        use EventBody::*;
        let (level, text) = match &event.body {
            PipelineStarted(e) => (
                LogLevel::Info,
                match e.version {
                    Some(v) => format!("run of {} v{v} started", e.pipeline),
                    None => format!("run of {} started", e.pipeline),
                },
            ),
            PipelinePaused(_) => (LogLevel::Info, "paused".into()),
            PipelineResumed(_) => (LogLevel::Info, "resumed".into()),
            PipelineCancelled(e) => (
                LogLevel::Warn,
                match &e.reason {
                    Some(reason) => format!("cancelled: {reason}"),
                    None => "cancelled".into(),
                },
            ),
            PipelineCompleted(e) => (
                LogLevel::Info,
                format!(
                    "completed in {} · {} tokens · ${:.4}",
                    seconds(e.totals.duration_ms),
                    e.totals.tokens,
                    e.totals.cost_usd
                ),
            ),
            PipelineError(e) => (LogLevel::Error, format!("failed: {}", e.error)),
            StepStarted(e) => {
                let mut text = format!("started on {}/{}", e.provider, e.model);
                if let Some(of) = e.replay_of {
                    text.push_str(&format!(" · replay of attempt {of}"));
                } else if e.attempt > 1 {
                    text.push_str(&format!(" · attempt {}", e.attempt));
                }
                (LogLevel::Info, text)
            }
            PromptSent(e) => (
                LogLevel::Debug,
                format!("prompt sent · {} tokens", e.token_count),
            ),
            ResponseReceived(e) => (
                LogLevel::Debug,
                match e.ttft_ms {
                    Some(ttft) => format!(
                        "response received · {} tokens · first token after {ttft} ms",
                        e.usage.completion_tokens
                    ),
                    None => format!("response received · {} tokens", e.usage.completion_tokens),
                },
            ),
            StepCompleted(e) => {
                let level = match e.status {
                    StepStatus::Completed | StepStatus::Skipped => LogLevel::Info,
                    StepStatus::Cancelled => LogLevel::Warn,
                    StepStatus::Failed => LogLevel::Error,
                };
                let mut text = format!(
                    "{} in {} · {} tokens · ${:.4}",
                    e.status.as_str(),
                    seconds(e.duration_ms),
                    e.tokens,
                    e.cost_usd
                );
                if let Some(error) = &e.error {
                    text.push_str(&format!(": {error}"));
                }
                (level, text)
            }
            LogEntry(e) => (e.level, e.message.clone()),
            StepProgress(_) | ResponseStreaming(_) | MetricsUpdated(_) | BusHeartbeat(_)
            | BusResync(_) => return None,
        };
        Some(RunLogLine {
            seq: event.seq,
            at: event.at,
            level,
            step: event.body.scope().step.map(str::to_owned),
            text,
        })
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{LogContext, LogEntry, StepCompleted};

    fn event(body: EventBody) -> Event {
        Event {
            seq: 7,
            at: Utc::now(),
            body,
        }
    }

    #[test]
    fn a_failed_step_is_an_error_line_with_its_reason() {
        let line = RunLogLine::of(&event(EventBody::StepCompleted(StepCompleted {
            execution_id: uuid::Uuid::nil(),
            step: "draft".into(),
            duration_ms: 1260,
            tokens: 40,
            cost_usd: 0.0012,
            status: StepStatus::Failed,
            error: Some("timed out after 1000 ms".into()),
        })))
        .expect("a line");
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(line.step.as_deref(), Some("draft"));
        assert_eq!(
            line.text,
            "failed in 1.3 s · 40 tokens · $0.0012: timed out after 1000 ms"
        );
    }

    #[test]
    fn log_entries_keep_their_level_and_chunks_are_left_out() {
        let line = RunLogLine::of(&event(EventBody::LogEntry(LogEntry {
            level: LogLevel::Warn,
            message: "retrying after 429".into(),
            timestamp: Utc::now(),
            context: LogContext::default(),
        })))
        .expect("a line");
        assert_eq!(
            (line.level, line.text.as_str()),
            (LogLevel::Warn, "retrying after 429")
        );
        assert!(RunLogLine::of(&event(EventBody::ResponseStreaming(
            crate::models::ResponseStreaming {
                execution_id: uuid::Uuid::nil(),
                step: "a".into(),
                chunk: "x".into(),
            }
        )))
        .is_none());
    }
}
