//! Wire types: defined once, serialised by the server, deserialised by the browser.

mod event_reading;
pub mod events;
mod execution;
mod health;
pub mod history;
pub mod logs;
mod pipelines;
mod run_log;
mod snapshot;
mod status;

pub use events::{
    Event, EventBody, LogContext, LogEntry, LogLevel, PipelineCompleted, PipelineError,
    PipelineStarted, PromptSent, ResponseReceived, ResponseStreaming, RunTransition, StepCompleted,
    StepProgress, StepStarted, StepStatus, Totals, Usage,
};
pub use execution::{ExecutionDetail, RunAction, StepDetail};
pub use health::{DatabaseHealth, DatabaseMode, Health, HealthStatus, StoreSummary};
pub use history::{HistoryCursor, HistoryFilter, HistoryPage, HistoryRun, HistorySort};
pub use logs::{
    LogCursor, LogFilter, LogFilterError, LogPage, LogRecord, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};
pub use pipelines::{
    BatchFormat, BatchProgress, BatchRows, Check, EditorSchema, GraphStep, InputField, KeyDoc,
    LastRun, PipelineListing, PipelineText, PipelineVersion, Preview, Problem, ProviderDoc,
    ProviderInfo, ProviderTest, RowError, SaveOutcome,
};
pub use run_log::RunLogLine;
pub use snapshot::{LogLine, MetricsSample, RunSummary, Snapshot, StoreTotals};
pub use status::{AttemptStatus, RunStatus};
