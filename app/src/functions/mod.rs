//! `#[server]` functions: the browser's calls into the server.

pub mod codec;
mod health;
mod pipelines;
mod runs;
mod snapshot;

pub use health::*;
pub use pipelines::*;
pub use runs::*;
pub use snapshot::*;

/// What calling a server function does, for the server's access check: a read-only token may
/// call the ones that only read.
#[cfg(feature = "ssr")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads the store or computes an answer from what it is sent; nothing changes.
    Reads,
    /// Starts, controls or edits something, or spends money (a provider request).
    Changes,
}

/// Every server function's path with its [`Effect`], in one place. The server's tests fail when
/// a server function is missing here, so a new one cannot slip past the read-only token.
#[cfg(feature = "ssr")]
pub fn effects() -> [(&'static str, Effect); 20] {
    use leptos::server_fn::ServerFn;
    use Effect::{Changes, Reads};
    [
        (GetHealth::PATH, Reads),
        (GetSnapshot::PATH, Reads),
        (GetExecution::PATH, Reads),
        (GetRunLog::PATH, Reads),
        (ControlRun::PATH, Changes),
        (ListPipelines::PATH, Reads),
        (OpenPipeline::PATH, Reads),
        (CheckPipeline::PATH, Reads),
        (GetEditorSchema::PATH, Reads),
        (SavePipeline::PATH, Changes),
        (DeletePipeline::PATH, Changes),
        (RunPipeline::PATH, Changes),
        // Renders a prompt and counts its tokens; no provider is called.
        (PreviewStep::PATH, Reads),
        (RunOutputs::PATH, Reads),
        (ListProviders::PATH, Reads),
        // A real (one-token) request to the provider: it costs money and uses the key.
        (TestProvider::PATH, Changes),
        (ParseBatch::PATH, Reads),
        (StartBatch::PATH, Changes),
        (GetBatchProgress::PATH, Reads),
        (CancelBatch::PATH, Changes),
    ]
}
