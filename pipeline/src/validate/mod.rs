//! YAML text in, a [`Pipeline`] or every problem found out.
//!
//! The checks run in one pass over the located tree and keep going after a problem, so an editor
//! can underline everything at once. A value that is wrong is reported and replaced by its
//! default, which lets later checks (references, cycles) still run.
//!
//! The pass is one `Checker`, its parts in the files of this folder, each using only those
//! listed before it:
//! - [`keys`]: the keys allowed in each mapping, with type, default and meaning (public: an
//!   editor completes and explains from the same list);
//! - `suggest`: "did you mean": the closest known name, a valid spelling of an invalid one;
//! - `fields`: a mapping's entries and its typed values (text, numbers, provider, names);
//! - `locate`: where a position inside a template's text is in the YAML source;
//! - `graph`: the dependency graph of the steps: cycles, and the run order;
//! - `references`: what a step refers to (`depends_on`, template variables), checked against
//!   the inputs, env values and steps that exist;
//! - `steps`: `steps:` and each step, with the settings it shares with `defaults:`;
//! - `document`: the top level, `defaults:`, `inputs:`, `env:`.
//!
//! The same pass fills an [`Outline`] (steps, dependencies, a cycle, inputs) from whatever it
//! could read, for an editor's graph and run form: [`check`].

mod document;
mod fields;
mod graph;
pub mod keys;
mod locate;
mod outline;
mod references;
mod steps;
mod suggest;

pub use outline::{Outline, OutlineStep};

use crate::model::{Defaults, Pipeline, RetryPolicy};
use crate::yaml::{self, diag, Mark, SourceIndex};
use crate::Diagnostic;

/// What the validator needs to know about the server: the provider names configured there.
///
/// An empty list means "not known" (e.g. the browser editor before it has asked the server), and
/// then provider names are not checked.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub providers: Vec<String>,
}

/// Provider and model used where neither the step nor `defaults:` names one: the offline
/// simulator, so a fresh install runs pipelines with no key.
pub const DEFAULT_PROVIDER: &str = "simulated";
pub const DEFAULT_MODEL: &str = "sim-small";

/// The defaults used for every key that `defaults:` leaves out.
pub fn builtin_defaults() -> Defaults {
    Defaults {
        provider: DEFAULT_PROVIDER.to_owned(),
        model: DEFAULT_MODEL.to_owned(),
        max_tokens: 512,
        temperature: 0.7,
        timeout_ms: 120_000,
        retry: RetryPolicy {
            attempts: 3,
            backoff_ms: 500,
            max_backoff_ms: 30_000,
        },
    }
}

/// `max_parallel` when the file does not set it, and its upper bound.
pub const DEFAULT_MAX_PARALLEL: u32 = 4;
pub const MAX_PARALLEL_LIMIT: u32 = 64;
/// At most this many diagnostics are returned; a file with more is not worth listing further.
pub const MAX_DIAGNOSTICS: usize = 500;

/// Parses and checks a pipeline file. Returns all problems at once, in file order.
pub fn validate(text: &[u8], catalog: &Catalog) -> Result<Pipeline, Vec<Diagnostic>> {
    check(text, catalog).result
}

/// The validator's verdict on a text and its [`Outline`].
#[derive(Debug, Clone)]
pub struct Checked {
    pub result: Result<Pipeline, Vec<Diagnostic>>,
    pub outline: Outline,
}

/// [`validate`], plus the outline of the text. When the YAML stops parsing part-way, the
/// outline is made from the part before that point (its own problems are not reported: the
/// parse error is the one to fix first).
pub fn check(text: &[u8], catalog: &Catalog) -> Checked {
    let (document, stopped) = yaml::load_partial(text);
    let Some(document) = document else {
        return Checked {
            result: Err(stopped.into_iter().collect()),
            outline: Outline::default(),
        };
    };
    let mut checker = Checker {
        source: document.source,
        index: None,
        catalog,
        diagnostics: document.diagnostics,
        outline: Outline::default(),
    };
    let pipeline = checker.document(document.root.as_deref());
    let outline = checker.outline;
    if let Some(stopped) = stopped {
        return Checked {
            result: Err(vec![stopped]),
            outline,
        };
    }
    let mut diagnostics = checker.diagnostics;
    let result = match pipeline {
        Some(pipeline) if diagnostics.is_empty() => Ok(pipeline),
        _ => {
            if diagnostics.is_empty() {
                // Every path that gives up pushes a diagnostic first; this keeps the contract
                // ("Err is never empty") even if one is missed.
                diagnostics.push(diag(1, 1, "the pipeline is not valid"));
            }
            diagnostics.sort_by_key(|d| (d.line, d.column));
            diagnostics.truncate(MAX_DIAGNOSTICS);
            Err(diagnostics)
        }
    };
    Checked { result, outline }
}

/// One validation pass: the text, what is known about the server, and the problems found so far.
struct Checker<'a, 'c> {
    source: &'a str,
    /// Line starts of `source`, built the first time a template position is located.
    index: Option<SourceIndex<'a>>,
    catalog: &'c Catalog,
    diagnostics: Vec<Diagnostic>,
    /// What was read so far, valid or not.
    outline: Outline,
}

impl Checker<'_, '_> {
    fn error(&mut self, at: Mark, message: impl Into<String>) {
        self.diagnostics.push(diag(at.line, at.column, message));
    }

    fn error_suggest(&mut self, at: Mark, message: impl Into<String>, suggestion: Option<String>) {
        let mut d = diag(at.line, at.column, message);
        d.suggestion = suggestion;
        self.diagnostics.push(d);
    }
}
