//! The log viewer's API: the stored lines a filter selects, a page at a time or all of them.
//!
//! Paths are relative to the API's prefix (`/api/v1`, and the `/api` alias; see [`super::api`]).
//!
//! - `GET /logs?level=warn,error&pipeline=…&run=…&step=…&from=…&to=…&q=…&limit=…&before=…`
//!   (or `after=…`) → a [`LogPage`]: `{"lines": [{id, at, level, run, pipeline, step, message,
//!   context}…], "older": cursor | null, "newer": cursor | null}`, lines oldest first.
//! - `GET /logs/export?<the same filter>&format=text|jsonl` → every line the filter selects
//!   (its page size and cursors aside), oldest first, streamed from Postgres as an attachment.
//!
//! The query string is the one the `/logs` page keeps in its URL ([`LogFilter::from_query`]);
//! a filter that cannot be used is answered 400 with what to fix and `path` naming the
//! parameter.

use std::fmt::Write as _;

use app::models::{LogFilter, LogPage, LogRecord};
use axum::{
    body::Body,
    extract::{RawQuery, State},
    response::Response,
    Json,
};
use futures::StreamExt;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{error::ApiError, export};
use crate::{db, state::AppState};

/// Lines formatted into one chunk of the export's body at most (those already read).
const LINES_PER_CHUNK: usize = 512;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page))
        .routes(routes!(export))
}

fn filter(query: Option<&str>) -> Result<LogFilter, ApiError> {
    Ok(LogFilter::from_query(query.unwrap_or_default())?)
}

/// The filter's query parameters, as the document lists them for the page and the export alike.
/// Never built: the query is read as it comes, by [`LogFilter::from_query`] (the `/logs` page's
/// URL form), which checks each and names the one at fault.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct FilterParams {
    /// Comma-separated levels: trace, debug, info, warn, error
    level: Option<String>,
    /// A pipeline's name
    pipeline: Option<String>,
    /// An execution id
    run: Option<String>,
    /// A step's name
    step: Option<String>,
    /// RFC 3339 time, inclusive
    from: Option<String>,
    /// RFC 3339 time, exclusive
    to: Option<String>,
    /// Text the message contains, ignoring case (3 to 500 characters)
    q: Option<String>,
}

#[utoipa::path(
    get,
    path = "/logs",
    tag = "logs",
    summary = "A page of the stored log lines a filter selects, oldest first",
    params(
        FilterParams,
        ("limit" = Option<u32>, Query, description = "Lines a page (default 200, at most 1000)"),
        ("before" = Option<String>, Query, description = "A page's `older` cursor: the page just older"),
        ("after" = Option<String>, Query, description = "A page's `newer` cursor: the page just newer"),
        ("since" = Option<i64>, Query, description = "A page's `tail`: the lines stored after it, whatever their times"),
    ),
    responses(
        (status = 200, description = "The page and the cursors next to it", body = LogPage),
        (status = 400, description = "A filter that cannot be used; `path` names the parameter", body = ApiError),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<LogPage>, ApiError> {
    let filter = filter(query.as_deref())?;
    let page = db::logs::page(&state.pool, &filter)
        .await
        .map_err(|e| ApiError::internal("the log could not be read", e))?;
    Ok(Json(page))
}

/// How exported lines are written.
#[derive(Clone, Copy)]
enum Format {
    /// One line of text per log line: time, level, pipeline/run/step, message, context.
    Text,
    /// One JSON object per line, as `GET /api/logs` gives each line.
    JsonLines,
}

#[utoipa::path(
    get,
    path = "/logs/export",
    tag = "logs",
    summary = "Every line a filter selects, oldest first, streamed as an attachment",
    params(
        FilterParams,
        ("format" = Option<String>, Query, description = "`text` (the default) or `jsonl`"),
    ),
    responses(
        (status = 200, description = "The lines", content(
            (String = "text/plain"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "A filter that cannot be used; `path` names the parameter", body = ApiError),
    )
)]
async fn export(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = query.unwrap_or_default();
    let filter = filter(Some(&query))?;
    let format = match export::format(&query, &["text", "jsonl"])? {
        "jsonl" => Format::JsonLines,
        _ => Format::Text,
    };
    let (content_type, extension) = match format {
        Format::Text => ("text/plain; charset=utf-8", "log"),
        Format::JsonLines => ("application/x-ndjson", "jsonl"),
    };
    let chunks = db::logs::export(state.pool.clone(), filter)
        .ready_chunks(LINES_PER_CHUNK)
        .map(move |rows| {
            let mut chunk = String::new();
            for row in rows {
                // A failure half way cannot change the status any more: the body ends with an
                // error, so the client sees a broken download rather than a short file.
                let line = row.inspect_err(|e| tracing::error!("log export stopped: {e}"))?;
                write_line(&mut chunk, &line, format);
            }
            Ok::<_, sqlx::Error>(chunk)
        });
    Ok(export::attachment(
        content_type,
        "pipescope-logs",
        extension,
        Body::from_stream(chunks),
    ))
}

fn write_line(out: &mut String, line: &LogRecord, format: Format) {
    match format {
        Format::JsonLines => {
            if let Ok(json) = serde_json::to_string(line) {
                out.push_str(&json);
            }
        }
        Format::Text => {
            let _ = write!(
                out,
                "{} {:<5}",
                line.at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                line.level.as_str().to_ascii_uppercase()
            );
            let scope: Vec<String> = [
                line.pipeline.clone(),
                line.run.map(|r| r.to_string()),
                line.step.clone(),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !scope.is_empty() {
                let _ = write!(out, " [{}]", scope.join(" "));
            }
            out.push(' ');
            // One log line, one line of text: breaks in a message are written as `\n`, `\r`.
            for c in line.message.chars() {
                match c {
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
            if !line.context.is_empty() {
                if let Ok(context) = serde_json::to_string(&line.context) {
                    out.push(' ');
                    out.push_str(&context);
                }
            }
        }
    }
    out.push('\n');
}
