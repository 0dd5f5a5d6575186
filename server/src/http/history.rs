//! The history's API: the runs a filter selects, a page at a time or all of them.
//!
//! Paths are relative to the API's prefix (`/api/v1`, and the `/api` alias; see [`super::api`]).
//!
//! - `GET /history?pipeline=…&status=failed,cancelled&provider=…&model=…&batch=…&from=…&to=…
//!   &q=…&sort=newest|oldest|duration|cost&limit=…&after=…` → a [`HistoryPage`]:
//!   `{"runs": [{id, pipeline, status, …, batch_id, duration_ms, models}…], "next": cursor | null}`.
//! - `GET /history/export?<the same filter>&format=csv|jsonl` → every run the filter
//!   selects (its page size and cursor aside), in its order, streamed from Postgres as an
//!   attachment.
//!
//! The query string is the one the `/runs` page keeps in its URL
//! ([`HistoryFilter::from_query`]); a filter that cannot be used is answered 400 with what to
//! fix and `path` naming the parameter.

use app::models::{HistoryFilter, HistoryPage, HistoryRun};
use axum::{
    body::Body,
    extract::{RawQuery, State},
    response::Response,
    Json,
};
use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{error::ApiError, export};
use crate::{db, state::AppState};

/// Runs formatted into one chunk of the export's body at most (those already read).
const RUNS_PER_CHUNK: usize = 256;

/// The CSV export's columns, in order.
const CSV_HEADER: [&str; 15] = [
    "id",
    "pipeline",
    "status",
    "source",
    "batch_id",
    "started_at",
    "completed_at",
    "duration_ms",
    "steps_started",
    "steps_completed",
    "steps_total",
    "total_tokens",
    "cost_usd",
    "models",
    "error",
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page))
        .routes(routes!(export))
}

fn filter(query: Option<&str>) -> Result<HistoryFilter, ApiError> {
    Ok(HistoryFilter::from_query(query.unwrap_or_default())?)
}

/// The filter's query parameters, as the document lists them for the page and the export alike.
/// Never built: the query is read as it comes, by [`HistoryFilter::from_query`] (the `/runs`
/// page's URL form), which checks each and names the one at fault.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct FilterParams {
    /// A pipeline's name
    pipeline: Option<String>,
    /// Comma-separated statuses: pending, running, paused, completed, failed, cancelled, interrupted
    status: Option<String>,
    /// A step attempt was sent to this provider
    provider: Option<String>,
    /// A step attempt was sent to this model
    model: Option<String>,
    /// A batch id
    batch: Option<String>,
    /// RFC 3339 time of the run's start, inclusive
    from: Option<String>,
    /// RFC 3339 time of the run's start, exclusive
    to: Option<String>,
    /// Words in a step's prompt or response (web-search syntax, at most 200 characters)
    q: Option<String>,
    /// `newest` (the default), `oldest`, `duration` or `cost`
    sort: Option<String>,
}

#[utoipa::path(
    get,
    path = "/history",
    tag = "history",
    summary = "A page of the runs a filter selects, in its order",
    params(
        FilterParams,
        ("limit" = Option<u32>, Query, description = "Runs a page (default 50, at most 500)"),
        ("after" = Option<String>, Query, description = "The previous page's `next`"),
    ),
    responses(
        (status = 200, description = "The page and where the next starts", body = HistoryPage),
        (status = 400, description = "A filter that cannot be used; `path` names the parameter", body = ApiError),
        (status = 503, description = "The store could not be read; try again shortly", body = ApiError),
    )
)]
async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<HistoryPage>, ApiError> {
    let filter = filter(query.as_deref())?;
    let page = db::history::page(&state.pool, &filter)
        .await
        .map_err(|e| ApiError::internal("the history could not be read", e))?;
    Ok(Json(page))
}

/// How exported runs are written.
#[derive(Clone, Copy)]
enum Format {
    /// A header row, then one row per run ([`CSV_HEADER`]).
    Csv,
    /// One JSON object per run, as `GET /api/history` gives each run.
    JsonLines,
}

#[utoipa::path(
    get,
    path = "/history/export",
    tag = "history",
    summary = "Every run a filter selects, in its order, streamed as an attachment",
    params(
        FilterParams,
        ("format" = Option<String>, Query, description = "`csv` (the default) or `jsonl`"),
    ),
    responses(
        (status = 200, description = "The runs", content(
            (String = "text/csv"),
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
    let format = match export::format(&query, &["csv", "jsonl"])? {
        "jsonl" => Format::JsonLines,
        _ => Format::Csv,
    };
    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::JsonLines => ("application/x-ndjson", "jsonl"),
    };
    let header = match format {
        Format::Csv => csv_rows(std::iter::once(CSV_HEADER.map(str::to_owned).to_vec())),
        Format::JsonLines => Vec::new(),
    };
    let rows = db::history::export(state.pool.clone(), filter)
        .ready_chunks(RUNS_PER_CHUNK)
        .map(move |runs| {
            let mut chunk = Vec::new();
            let mut fields = Vec::new();
            for run in runs {
                // A failure half way cannot change the status any more: the body ends with an
                // error, so the client sees a broken download rather than a short file.
                let run = run.inspect_err(|e| tracing::error!("history export stopped: {e}"))?;
                match format {
                    Format::Csv => fields.push(csv_fields(&run)),
                    Format::JsonLines => {
                        if let Ok(json) = serde_json::to_vec(&run) {
                            chunk.extend_from_slice(&json);
                            chunk.push(b'\n');
                        }
                    }
                }
            }
            if !fields.is_empty() {
                chunk = csv_rows(fields);
            }
            Ok::<_, sqlx::Error>(chunk)
        });
    let body = futures::stream::once(async move { Ok(header) }).chain(rows);
    Ok(export::attachment(
        content_type,
        "pipescope-history",
        extension,
        Body::from_stream(body),
    ))
}

/// A run as the CSV's columns ([`CSV_HEADER`]).
fn csv_fields(run: &HistoryRun) -> Vec<String> {
    let summary = &run.run;
    let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    vec![
        summary.id.to_string(),
        summary.pipeline.clone(),
        summary.status.as_str().to_owned(),
        summary.source.clone(),
        run.batch_id.map(|b| b.to_string()).unwrap_or_default(),
        time(summary.started_at),
        summary.completed_at.map(time).unwrap_or_default(),
        run.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        summary.steps_started.to_string(),
        summary.steps_completed.to_string(),
        summary.steps_total.to_string(),
        summary.total_tokens.to_string(),
        format!("{:.6}", summary.cost_usd),
        run.models.join(" "),
        summary.error.clone().unwrap_or_default(),
    ]
}

/// Rows written as CSV (quoted where needed, by the `csv` crate).
fn csv_rows(rows: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        // Writing to memory fails only on a record of another length, which these are not.
        let _ = writer.write_record(&row);
    }
    writer.into_inner().unwrap_or_default()
}
