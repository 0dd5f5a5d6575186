//! The one error type `#[server]` functions return, readable on both sides of the wire.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Postgres could not answer; the message says what the driver reported.
    #[error("the database did not answer: {0}")]
    Database(String),
    /// What was asked for does not exist (an execution id, a step).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be done in the current state (pausing a finished run); says why.
    #[error("{0}")]
    Refused(String),
    /// The server was started without the backend context (a wiring bug, not a user error).
    #[error("the server is not ready to answer this request")]
    NotReady,
    /// Transport, encoding or routing failure of the server function call itself.
    #[error("request failed: {0}")]
    ServerFn(ServerFnErrorErr),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::ServerFn(value)
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::Database(error.to_string())
    }
}
