//! The pipeline language, as a pure function of text: YAML with locations and limits, the
//! validated [`Pipeline`] model, diagnostics that say what to fix, and prompt templates.
//! No IO and no async, so the server, the tests and (later) the browser editor share it.

pub mod diagnostic;
pub mod model;
pub mod template;
pub mod validate;
mod yaml;

pub use diagnostic::Diagnostic;
pub use model::{Defaults, InputSpec, Pipeline, RetryPolicy, Step};
pub use validate::{builtin_defaults, check, validate, Catalog, Checked, Outline, OutlineStep};
/// The largest pipeline text the loader accepts, in bytes.
pub use yaml::MAX_BYTES;
