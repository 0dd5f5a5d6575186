//! The pipeline studio's wire types: saved pipelines and their versions, the validator's verdict
//! on a text with what the editor draws from it, what the editor completes, and a save's answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::RunStatus;

/// One saved pipeline on `/pipelines`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineListing {
    pub name: String,
    pub description: Option<String>,
    /// The newest version (drafts included) and whether that newest one is a draft.
    pub version: u32,
    pub draft: bool,
    /// Steps of the newest version that validates (0 when none does).
    pub steps: u32,
    pub saved_at: DateTime<Utc>,
    /// Its newest run: id, status, start.
    pub last_run: Option<LastRun>,
    /// Runs started since midnight UTC, and their cost in USD.
    pub runs_today: u32,
    pub cost_today_usd: f64,
}

/// A pipeline's newest run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub id: Uuid,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
}

/// One saved version of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct PipelineVersion {
    #[cfg_attr(feature = "ssr", sqlx(try_from = "i32"))]
    pub version: u32,
    /// What the author said about this save ("" when nothing).
    pub note: String,
    /// Saved with problems, on purpose: not runnable.
    pub draft: bool,
    pub saved_at: DateTime<Utc>,
}

/// A pipeline's text as the editor opens it, and its history (newest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineText {
    pub name: String,
    pub version: u32,
    pub draft: bool,
    pub yaml: String,
    pub versions: Vec<PipelineVersion>,
}

/// A problem in the text, as the engine's validator reports it (1-based line and column, in
/// characters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub line: u32,
    pub column: u32,
    pub message: String,
    /// What the user probably meant, to put in place of the word at the problem.
    pub suggestion: Option<String>,
}

/// One step of the dependency graph: where it is in the text and what it waits for (its
/// `depends_on` and the steps its templates reference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphStep {
    pub name: String,
    /// 1-based line where the step starts.
    pub line: u32,
    /// Sorted; a reference the validator refuses (to a later step) is included, so the graph
    /// shows what the text says.
    pub depends_on: Vec<String>,
    /// As written in the step, or inherited from `defaults:`.
    pub provider: String,
    pub model: String,
}

/// One field of the generated run form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputField {
    pub name: String,
    pub description: Option<String>,
    /// The declared default (JSON), pre-filled; None = required.
    pub default: Option<serde_json::Value>,
}

/// The validator's verdict on a text, with what the graph and the run form need. `steps`,
/// `inputs` and `env` are filled on a best-effort basis even when there are problems (from the
/// parts that parse), so the graph does not vanish while the user types. `cycle` names the
/// steps of a dependency cycle, in order (each depends on the next, the last on the first),
/// when there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Empty when the text is valid; in file order.
    pub problems: Vec<Problem>,
    /// The pipeline's name, when the text gives a valid one.
    pub name: Option<String>,
    pub steps: Vec<GraphStep>,
    pub cycle: Vec<String>,
    pub inputs: Vec<InputField>,
    pub env: Vec<String>,
}

/// What the editor completes, from the validator's own key tables (pipeline/src/validate/keys.rs)
/// and the server's configured providers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditorSchema {
    /// Keys by place: "top", "defaults", "step", "retry", "input".
    pub keys: Vec<KeyDoc>,
    pub providers: Vec<ProviderDoc>,
    /// Template filters usable inside {{ }} (name and one-line doc).
    pub filters: Vec<(String, String)>,
    /// The loader's size limit in bytes: larger texts are refused at once in the browser.
    pub max_bytes: u32,
}

/// One key of a pipeline file, for completion and hover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyDoc {
    /// "top", "defaults", "step", "retry" or "input".
    pub place: String,
    pub name: String,
    /// Its type as a reader would say it ("whole number ≥ 1").
    pub kind: String,
    /// What applies when it is left out, as written in YAML (`512`) or said (`defaults.model`,
    /// "required"); None when it is simply not set.
    pub default: Option<String>,
    pub doc: String,
}

/// A provider instance configured on this server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderDoc {
    pub name: String,
    /// "openai", "anthropic", "gemini" or "simulated".
    pub kind: String,
    /// Models the server knows for it (from its price table); others may work too.
    pub models: Vec<String>,
}

/// The answer to a save.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SaveOutcome {
    /// Stored as this version.
    Saved { version: u32 },
    /// Someone saved a newer version since `base`: nothing was stored; here is theirs.
    Conflict { theirs: PipelineText },
    /// Not a draft and the text has problems: nothing was stored.
    Invalid { problems: Vec<Problem> },
}

/// A step's prompt exactly as it would be sent, without calling any provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub step: String,
    pub provider: String,
    pub model: String,
    pub system: Option<String>,
    pub prompt: String,
    /// Tokens of system + prompt by the engine's tokenizer (o200k; an estimate for models that
    /// count differently), as the engine counts them before sending.
    pub input_tokens: u32,
    /// The completion's limit as it would be sent (the step's `max_tokens`, lowered to what its
    /// `token_budget` leaves after the prompt).
    pub max_tokens: u32,
    /// The cost of sending `input_tokens` and receiving `max_tokens`, in USD; None when this
    /// server has no price for the model.
    pub cost_usd: Option<f64>,
}

/// One configured provider (never its key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderInfo {
    pub name: String,
    /// "openai", "anthropic", "gemini" or "simulated".
    pub kind: String,
    /// None for the simulated provider, which reaches nothing over the network.
    pub base_url: Option<String>,
    /// Whether its API key is set, and where it is read from ("environment OPENAI_API_KEY",
    /// "config file", or "no key needed"); never the key itself.
    pub key_set: bool,
    pub key_source: String,
    /// Models the server knows for it (from its price table); others may work too.
    pub models: Vec<String>,
}

/// The outcome of a real minimal request to a provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderTest {
    pub ok: bool,
    /// From sending the request to the end of the answer (or the failure).
    pub millis: u64,
    /// What was asked and answered, or the provider's error as it said it.
    pub detail: String,
}

/// How pasted or uploaded batch inputs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchFormat {
    /// A header row of input names, then one row per run; every value is text.
    Csv,
    /// One JSON object per line (blank lines skipped); values keep their JSON type.
    JsonLines,
}

impl BatchFormat {
    /// JSON lines when the first non-blank character opens an object, else CSV.
    pub fn detect(text: &str) -> Self {
        if text.trim_start().starts_with('{') {
            BatchFormat::JsonLines
        } else {
            BatchFormat::Csv
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BatchFormat::Csv => "CSV",
            BatchFormat::JsonLines => "JSON lines",
        }
    }
}

/// Batch inputs read and checked against the pipeline's declared inputs: the rows that would
/// run, in order, and the ones that would not, by line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRows {
    /// One input set per good row, as given (defaults are applied when the run starts).
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub errors: Vec<RowError>,
}

/// A row that would not run: the 1-based line it starts on, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

/// How many runs of a batch are stored in each status; queued runs that have not started are
/// not stored yet, so they are the batch's size minus the sum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchProgress {
    pub counts: Vec<(RunStatus, u32)>,
}

impl BatchProgress {
    pub fn count(&self, status: RunStatus) -> u32 {
        self.counts
            .iter()
            .filter(|(s, _)| *s == status)
            .map(|(_, n)| n)
            .sum()
    }

    /// Runs stored so far, whatever their status.
    pub fn stored(&self) -> u32 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    /// Runs that may still change: waiting, running or paused.
    pub fn active(&self) -> u32 {
        self.counts
            .iter()
            .filter(|(s, _)| s.is_active())
            .map(|(_, n)| n)
            .sum()
    }
}
