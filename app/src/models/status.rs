//! Where a run and a step attempt stand. Stored as text (readable in psql, checked by the
//! tables' CHECK constraints) and sent as the same lowercase words; compared only as enums.

use serde::{Deserialize, Serialize};

/// A run's state, as `pipeline_executions.status` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum RunStatus {
    /// Accepted, not started yet (a batch's queued run).
    Pending,
    Running,
    Paused,
    Completed,
    Failed,
    Cancelled,
    /// Its server stopped while it ran; it can be re-run.
    Interrupted,
}

impl RunStatus {
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Paused,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::Interrupted,
    ];

    /// Still going: it may change, and the dashboard lists it among the active runs.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RunStatus::Pending | RunStatus::Running | RunStatus::Paused
        )
    }

    /// The stored and wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// The word a person reads on the dashboard.
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Pending => "waiting",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Completed => "complete",
            RunStatus::Failed => "error",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// One step attempt's state, as `step_executions.status` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum AttemptStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    Skipped,
    Interrupted,
}

impl AttemptStatus {
    pub const ALL: [AttemptStatus; 7] = [
        AttemptStatus::Pending,
        AttemptStatus::Running,
        AttemptStatus::Completed,
        AttemptStatus::Failed,
        AttemptStatus::Cancelled,
        AttemptStatus::Skipped,
        AttemptStatus::Interrupted,
    ];

    pub fn is_active(self) -> bool {
        matches!(self, AttemptStatus::Pending | AttemptStatus::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Pending => "pending",
            AttemptStatus::Running => "running",
            AttemptStatus::Completed => "completed",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Cancelled => "cancelled",
            AttemptStatus::Skipped => "skipped",
            AttemptStatus::Interrupted => "interrupted",
        }
    }
}

impl From<super::events::StepStatus> for AttemptStatus {
    fn from(status: super::events::StepStatus) -> Self {
        use super::events::StepStatus;
        match status {
            StepStatus::Completed => AttemptStatus::Completed,
            StepStatus::Failed => AttemptStatus::Failed,
            StepStatus::Cancelled => AttemptStatus::Cancelled,
            StepStatus::Skipped => AttemptStatus::Skipped,
        }
    }
}

macro_rules! text_forms {
    ($($status:ident),*) => {$(
        impl std::fmt::Display for $status {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $status {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                Self::ALL
                    .into_iter()
                    .find(|s| s.as_str() == text)
                    .ok_or_else(|| format!("unknown {} {text:?}", stringify!($status)))
            }
        }

        // Rows decode the TEXT column through this (`#[sqlx(try_from = "String")]`).
        impl TryFrom<String> for $status {
            type Error = String;

            fn try_from(text: String) -> Result<Self, String> {
                text.parse()
            }
        }
    )*};
}
text_forms!(RunStatus, AttemptStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_word_the_wire_word_and_parsing_agree() {
        for status in RunStatus::ALL {
            let wire = serde_json::to_string(&status).expect("serialise");
            assert_eq!(wire, format!("\"{}\"", status.as_str()));
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(status));
        }
        for status in AttemptStatus::ALL {
            let wire = serde_json::to_string(&status).expect("serialise");
            assert_eq!(wire, format!("\"{}\"", status.as_str()));
            assert_eq!(status.as_str().parse::<AttemptStatus>(), Ok(status));
        }
        assert!("done".parse::<RunStatus>().is_err());
        assert!(RunStatus::Paused.is_active() && !RunStatus::Interrupted.is_active());
    }
}
