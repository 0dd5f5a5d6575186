//! The history's reads of `pipeline_executions`: a page of the runs a [`HistoryFilter`] selects
//! in its order, by keyset on `(sort key, id)` (never OFFSET: the thousandth page costs what the
//! first does), and every selected run as a stream, for export.
//!
//! Each order has its own index (migration `history`), walked from the cursor; only the
//! filter's parts that are set become conditions, and the statements are not prepared for reuse
//! (`persistent(false)`), so each is planned with its values: a search for a word on one run in
//! a million and one on every run need different plans. A page picks its ids first and only
//! then reads each picked run's summary (its steps' counts, tokens, models), so runs the filter
//! passes over cost nothing more. The search reads the documents the search indexer keeps
//! (`step_search`, [`super::search`]): steps stored in the last moments may not be found yet,
//! and a page of a search says how many are still waiting ([`HistoryPage::unindexed`]).

use app::models::{HistoryCursor, HistoryFilter, HistoryPage, HistoryRun, HistorySort};
use chrono::DateTime;
use futures::{Stream, StreamExt};
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::queries::RUN_COLUMNS;

/// Steps waiting for the search index are counted up to this many.
pub const UNINDEXED_CAP: i64 = 10_000;

/// What the list shows of a run besides its summary.
const HISTORY_COLUMNS: &str = "e.batch_id, e.duration_ms,
    ARRAY(SELECT DISTINCT s.provider || '/' || s.model FROM step_executions s
          WHERE s.execution_id = e.id AND s.provider IS NOT NULL AND s.model IS NOT NULL
          ORDER BY 1) AS models";

/// A listed run with its place in the order, from which the next page's cursor is made.
#[derive(sqlx::FromRow)]
struct Placed {
    #[sqlx(flatten)]
    run: HistoryRun,
    sort_key: String,
}

/// The sort key as text (what a cursor holds), the order, and the keyset comparison.
fn order_of(sort: HistorySort) -> (&'static str, &'static str, &'static str) {
    match sort {
        HistorySort::Newest => (
            "(extract(epoch FROM e.started_at) * 1000000)::int8::text",
            "e.started_at DESC, e.id DESC",
            "(e.started_at, e.id) <",
        ),
        HistorySort::Oldest => (
            "(extract(epoch FROM e.started_at) * 1000000)::int8::text",
            "e.started_at ASC, e.id ASC",
            "(e.started_at, e.id) >",
        ),
        HistorySort::Duration => (
            "COALESCE(e.duration_ms, -1)::text",
            "COALESCE(e.duration_ms, -1) DESC, e.id DESC",
            "(COALESCE(e.duration_ms, -1), e.id) <",
        ),
        HistorySort::Cost => (
            "e.cost_usd::text",
            "e.cost_usd DESC, e.id DESC",
            "(e.cost_usd, e.id) <",
        ),
    }
}

/// ` AND …` for each part of `filter` that is set, the cursor included.
fn push_conditions<'a>(query: &mut QueryBuilder<'a, Postgres>, filter: &'a HistoryFilter) {
    if let Some(pipeline) = &filter.pipeline {
        query.push(" AND e.pipeline_name = ").push_bind(pipeline);
    }
    if !filter.statuses.is_empty() {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        query
            .push(" AND e.status = ANY(")
            .push_bind(statuses)
            .push(")");
    }
    if let Some(batch) = filter.batch {
        query.push(" AND e.batch_id = ").push_bind(batch);
    }
    if let Some(from) = filter.from {
        query.push(" AND e.started_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        query.push(" AND e.started_at < ").push_bind(to);
    }
    if filter.provider.is_some() || filter.model.is_some() {
        query.push(" AND EXISTS (SELECT 1 FROM step_executions s WHERE s.execution_id = e.id");
        if let Some(provider) = &filter.provider {
            query.push(" AND s.provider = ").push_bind(provider);
        }
        if let Some(model) = &filter.model {
            query.push(" AND s.model = ").push_bind(model);
        }
        query.push(")");
    }
    if let Some(q) = &filter.q {
        query
            .push(
                " AND e.id IN (SELECT f.execution_id FROM step_search f WHERE f.document \
                 @@ websearch_to_tsquery('simple', ",
            )
            .push_bind(q)
            .push("))");
    }
    if let Some(after) = &filter.after {
        let (_, _, compare) = order_of(filter.sort);
        query.push(format_args!(" AND {compare} ("));
        // The key was checked against the order when the filter was read (`validate`).
        match filter.sort {
            HistorySort::Newest | HistorySort::Oldest => {
                let at = after
                    .key
                    .parse()
                    .ok()
                    .and_then(DateTime::from_timestamp_micros);
                query.push_bind(at);
            }
            HistorySort::Duration => {
                query.push_bind(after.key.parse::<i64>().ok());
            }
            HistorySort::Cost => {
                query.push_bind(&after.key).push("::numeric");
            }
        }
        query.push(", ").push_bind(after.id).push(")");
    }
}

/// One page of the runs `filter` selects, in its order, with the cursor of the next page. The
/// filter is expected to be valid ([`HistoryFilter::validate`]).
pub async fn page(pool: &PgPool, filter: &HistoryFilter) -> Result<HistoryPage, sqlx::Error> {
    let size = usize::try_from(filter.page_size()).unwrap_or(usize::MAX);
    let (key, order, _) = order_of(filter.sort);
    let mut query = QueryBuilder::new(format!(
        "WITH picked AS (SELECT e.id, {key} AS sort_key FROM pipeline_executions e WHERE TRUE"
    ));
    push_conditions(&mut query, filter);
    // One run more than the page says whether there is a next page.
    query
        .push(format_args!(" ORDER BY {order} LIMIT "))
        .push_bind(size as i64 + 1)
        .push(format_args!(
            ") SELECT {RUN_COLUMNS}, {HISTORY_COLUMNS}, picked.sort_key
             FROM picked JOIN pipeline_executions e ON e.id = picked.id ORDER BY {order}"
        ));
    let mut placed: Vec<Placed> = query
        .build_query_as()
        .persistent(false)
        .fetch_all(pool)
        .await?;
    let more = placed.len() > size;
    placed.truncate(size);
    let next = placed.last().filter(|_| more).map(|last| HistoryCursor {
        key: last.sort_key.clone(),
        id: last.run.run.id,
    });
    let unindexed = match filter.q {
        Some(_) => super::search::queued(pool, UNINDEXED_CAP).await?,
        None => 0,
    };
    Ok(HistoryPage {
        runs: placed.into_iter().map(|p| p.run).collect(),
        next,
        unindexed,
    })
}

/// Every run `filter` selects, in its order, read from Postgres as the caller consumes them
/// (one connection, rows as they arrive: never the whole result in memory). The filter's page
/// size and cursor do not apply.
pub fn export(
    pool: PgPool,
    filter: HistoryFilter,
) -> impl Stream<Item = Result<HistoryRun, sqlx::Error>> + Send + 'static {
    async_stream::try_stream! {
        let filter = HistoryFilter { after: None, ..filter };
        let (_, order, _) = order_of(filter.sort);
        let mut query = QueryBuilder::new(format!(
            "SELECT {RUN_COLUMNS}, {HISTORY_COLUMNS} FROM pipeline_executions e WHERE TRUE"
        ));
        push_conditions(&mut query, &filter);
        query.push(format_args!(" ORDER BY {order}"));
        let mut rows = query
            .build_query_as::<HistoryRun>()
            .persistent(false)
            .fetch(&pool);
        while let Some(row) = rows.next().await {
            yield row?;
        }
    }
}
