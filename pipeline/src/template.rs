//! Prompt templates (Jinja syntax). The context of a step's templates is
//! `{ <input>: …, inputs: {…}, env: {…}, steps: { <step>: { output: … } } }`.

use serde_json::Value;

/// A rendered template and the variables it used, for the prompt inspector.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    /// Each variable path the template references (`topic`, `steps.outline.output`) with the
    /// value substituted for it.
    pub variables: serde_json::Map<String, Value>,
}

/// Renders `source` with `context`. The error message says what failed and where in the template.
pub fn render(source: &str, context: &Value) -> Result<Rendered, String> {
    unimplemented!("{source} {context}")
}
