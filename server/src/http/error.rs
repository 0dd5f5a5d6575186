//! The JSON error every API route answers with: what is wrong, and for batch input, where.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// What is wrong and what to change.
    pub error: String,
    /// Index of the offending element of a batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// Path of the offending field inside that element, e.g. `data.step`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Located problems in a pipeline file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<pipeline::Diagnostic>>,
    /// Seconds to wait before trying again (a 429's or 503's `Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            index: None,
            path: None,
            diagnostics: None,
            retry_after: None,
        }
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }

    /// For failures that are ours, not the caller's: logged in full, shown in general terms.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!("{context}: {error}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{context}; try again shortly"),
        )
    }
}

impl From<crate::engine::EngineError> for ApiError {
    fn from(error: crate::engine::EngineError) -> Self {
        use crate::engine::EngineError::*;
        match error {
            NotFound(message) => Self::new(StatusCode::NOT_FOUND, message),
            BadRequest(message) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, message),
            Conflict(message) => Self::new(StatusCode::CONFLICT, message),
            busy @ Busy { .. } => {
                let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, busy.to_string());
                // Runs take seconds to minutes; sooner would only be refused again.
                error.retry_after = Some(5);
                error
            }
            Invalid(diagnostics) => {
                // The first few in the message, so a user reading only `error` still sees them.
                const SHOWN: usize = 5;
                let mut message = diagnostics
                    .iter()
                    .take(SHOWN)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                if diagnostics.len() > SHOWN {
                    message.push_str(&format!("; and {} more", diagnostics.len() - SHOWN));
                }
                let mut error = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the pipeline is not valid: {message}"),
                );
                error.diagnostics = Some(diagnostics);
                error
            }
            Store(error) => Self::internal("the database is unavailable", error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = (self.status, Json(self)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
