//! A problem in a pipeline file, located so an editor can underline it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Diagnostic {
    /// 1-based line in the YAML text.
    pub line: u32,
    /// 1-based column (in characters).
    pub column: u32,
    /// What is wrong and what to do about it, e.g. "unknown key `promt` in step `draft`".
    pub message: String,
    /// A replacement the user probably meant, e.g. "prompt".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)?;
        if let Some(suggestion) = &self.suggestion {
            write!(f, " (did you mean `{suggestion}`?)")?;
        }
        Ok(())
    }
}
