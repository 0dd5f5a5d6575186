//! What an editor draws while the text is being written: the pipeline's name, its steps with
//! where they are and what they wait for, a dependency cycle, the inputs and env names. Filled
//! by the validator's own pass (so the graph and the problems never disagree), from as much of
//! the text as it could read, even when the text has problems.

use crate::model::InputSpec;

/// The parts of a pipeline that could be read, valid or not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outline {
    /// The pipeline's name, when it is a valid one.
    pub name: Option<String>,
    pub description: Option<String>,
    /// Steps that have a name, in file order.
    pub steps: Vec<OutlineStep>,
    /// The steps of the first dependency cycle found, each depending on the next and the last on
    /// the first; empty without a cycle.
    pub cycle: Vec<String>,
    /// Declared inputs in file order.
    pub inputs: Vec<(String, InputSpec)>,
    /// Declared env names in file order.
    pub env: Vec<String>,
}

/// One step as written.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlineStep {
    pub name: String,
    /// 1-based line where the step starts.
    pub line: u32,
    /// Steps named in `depends_on` and steps its templates read (`steps.NAME.output`), sorted,
    /// including references the validator refuses (a later step), so the graph shows them.
    pub depends_on: Vec<String>,
    /// As written, or inherited from `defaults:`.
    pub provider: String,
    pub model: String,
}
