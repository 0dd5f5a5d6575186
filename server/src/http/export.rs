//! What the streamed downloads share (`/api/logs/export`, `/api/history/export`): the format
//! the query's `format` names, and the attachment a body stream becomes. A filter that cannot
//! be used is a 400 naming its parameter ([`ApiError`] from a [`LogFilterError`]).

use app::models::{logs::query_pairs, LogFilterError};
use axum::{
    body::Body,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::Utc;

use super::error::ApiError;

impl From<LogFilterError> for ApiError {
    fn from(refused: LogFilterError) -> Self {
        let mut error = ApiError::bad_request(refused.message);
        error.path = Some(refused.field.to_owned());
        error
    }
}

/// The query's `format` among `names` (the last one given; the first name when there is none
/// or it is empty), or a 400 listing them.
pub fn format<'a>(query: &str, names: &[&'a str]) -> Result<&'a str, ApiError> {
    let given = query_pairs(query)
        .filter(|(key, _)| *key == "format")
        .last()
        .map(|(_, value)| value);
    let name = match given {
        None => return Ok(names[0]),
        Some(Ok(name)) if name.is_empty() => return Ok(names[0]),
        Some(name) => name.unwrap_or_default(),
    };
    names.iter().copied().find(|n| *n == name).ok_or_else(|| {
        let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        let mut error = ApiError::bad_request(format!(
            "unknown export format {name:?}; use {}",
            quoted.join(" or ")
        ));
        error.path = Some("format".into());
        error
    })
}

/// `body` as a download named `<prefix>-<now>.<extension>`, never cached.
pub fn attachment(content_type: &str, prefix: &str, extension: &str, body: Body) -> Response {
    let filename = format!(
        "{prefix}-{}.{extension}",
        Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}
