use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What `GET /healthz` returns and the header shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when the database answered, `degraded` otherwise.
    pub status: HealthStatus,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub checked_at: DateTime<Utc>,
    pub uptime_secs: u64,
    pub database: DatabaseHealth,
    /// Executions whose status is `running` in the store.
    pub running_executions: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseHealth {
    pub reachable: bool,
    pub mode: DatabaseMode,
    /// Round trip of `SELECT 1`, when it answered.
    pub latency_ms: Option<f64>,
    /// The server's version string, when it answered.
    pub server_version: Option<String>,
    /// What went wrong, when it did not.
    pub error: Option<String>,
}

/// Whether pipescope started its own Postgres or was pointed at one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseMode {
    /// Started by pipescope in its data directory (no `DATABASE_URL`).
    Embedded,
    /// Given through `DATABASE_URL`.
    External,
}

impl DatabaseMode {
    pub fn label(self) -> &'static str {
        match self {
            DatabaseMode::Embedded => "built-in",
            DatabaseMode::External => "external",
        }
    }
}

/// How much the store holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreSummary {
    pub executions: i64,
    pub running: i64,
    pub steps: i64,
    pub pipelines: i64,
    pub log_entries: i64,
}
