//! The log viewer's reads of `log_entries`: a page of the lines a [`LogFilter`] selects, by
//! keyset on `(logged_at, id)` in either direction (never OFFSET: a page near the first line
//! ever stored costs what the tail costs), and every selected line as a stream, for export.
//!
//! Only the filter's parts that are set become conditions, so the planner sees the query it
//! has to run: the keyset index (`log_entries_keyset`) walked from the cursor for most filters,
//! a run's own index for `run`, the pipeline's runs then theirs for `pipeline`, and the trigram
//! index (`log_entries_message_trgm`) for a rare search. The statements are not prepared for
//! reuse (`persistent(false)`), so each is planned with its values: a search for a word on
//! every tenth line and one for a request id on a single line need different plans.

use app::models::{LogCursor, LogFilter, LogPage, LogRecord};
use futures::{Stream, StreamExt};
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::queries::read_at_stored_seq;

/// Which way from the cursor a query reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    NewestFirst,
    OldestFirst,
    /// In the order the lines were stored (by id), after the line with this id.
    StoredAfter(i64),
}

/// `SELECT` of the lines `filter` selects (without its cursors and page size, which the caller
/// passes as `from` and `limit`), in `order`, each with its run's pipeline.
fn select<'a>(
    filter: &'a LogFilter,
    from: Option<LogCursor>,
    order: Order,
    limit: Option<i64>,
) -> QueryBuilder<'a, Postgres> {
    let mut query = QueryBuilder::new(
        "SELECT l.id, l.logged_at AS at, l.level, l.execution_id AS run,
                p.pipeline_name AS pipeline, l.step_name AS step, l.message, l.context
         FROM log_entries l
         LEFT JOIN pipeline_executions p ON p.id = l.execution_id
         WHERE TRUE",
    );
    if !filter.levels.is_empty() {
        let levels: Vec<&str> = filter.levels.iter().map(|l| l.as_str()).collect();
        query
            .push(" AND l.level = ANY(")
            .push_bind(levels)
            .push(")");
    }
    if let Some(pipeline) = &filter.pipeline {
        query
            .push(
                " AND l.execution_id IN (SELECT id FROM pipeline_executions WHERE pipeline_name = ",
            )
            .push_bind(pipeline)
            .push(")");
    }
    if let Some(run) = filter.run {
        query.push(" AND l.execution_id = ").push_bind(run);
    }
    if let Some(step) = &filter.step {
        query.push(" AND l.step_name = ").push_bind(step);
    }
    if let Some(from) = filter.from {
        query.push(" AND l.logged_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        query.push(" AND l.logged_at < ").push_bind(to);
    }
    if let Some(q) = &filter.q {
        query
            .push(" AND l.message ILIKE ")
            .push_bind(contains_pattern(q));
    }
    match order {
        // Ids follow the order the lines' transactions commit in, on every instance
        // (`projection::lock_log_order`): no smaller id can appear after a larger one is read.
        Order::StoredAfter(id) => {
            query
                .push(" AND l.id > ")
                .push_bind(id)
                .push(" ORDER BY l.id");
        }
        Order::NewestFirst | Order::OldestFirst => {
            let (compare, direction) = match order {
                Order::NewestFirst => ("<", "DESC"),
                _ => (">", "ASC"),
            };
            if let Some(cursor) = from {
                query
                    .push(format_args!(" AND (l.logged_at, l.id) {compare} ("))
                    .push_bind(cursor.at)
                    .push(", ")
                    .push_bind(cursor.id)
                    .push(")");
            }
            query.push(format_args!(
                " ORDER BY l.logged_at {direction}, l.id {direction}"
            ));
        }
    }
    if let Some(limit) = limit {
        query.push(" LIMIT ").push_bind(limit);
    }
    query
}

/// An ILIKE pattern matching any text that contains `text`, its `%`, `_` and `\` taken
/// literally (backslash is ILIKE's escape character).
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of the lines `filter` selects, oldest first: the newest ones, or those just older
/// than `before`, or those just newer than `after`; with `since`, the lines stored after that
/// one in the order they were stored (`older` is then `None`, and `newer` is set when there
/// are more: ask again with `since` at the page's last line). The filter is expected to be valid
/// ([`LogFilter::validate`]). Read with the highest stored event, as the snapshot is
/// ([`read_at_stored_seq`]): the lines stored after the page are exactly the `log:entry`
/// events after its `seq`.
pub async fn page(pool: &PgPool, filter: &LogFilter) -> Result<LogPage, sqlx::Error> {
    let (mut tx, seq) = read_at_stored_seq(pool).await?;
    let size = usize::try_from(filter.page_size()).unwrap_or(usize::MAX);
    let (order, from) = match (filter.since, filter.after) {
        (Some(since), _) => (Order::StoredAfter(since), None),
        (None, Some(after)) => (Order::OldestFirst, Some(after)),
        (None, None) => (Order::NewestFirst, filter.before),
    };
    // One line more than the page says whether there are more beyond it.
    let mut lines: Vec<LogRecord> = select(filter, from, order, Some(size as i64 + 1))
        .build_query_as()
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?;
    let tail: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM log_entries")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let more = lines.len() > size;
    lines.truncate(size);
    if order == Order::NewestFirst {
        lines.reverse();
    }
    let first = lines.first().map(LogRecord::cursor);
    let last = lines.last().map(LogRecord::cursor);
    // Onward, `more` says exactly whether there is a next page. Back the way the reader came,
    // the lines they came from are there: the page's edge, or the cursor they gave.
    let (older, newer) = match order {
        Order::NewestFirst => (
            first.filter(|_| more),
            filter.before.map(|c| last.unwrap_or(c)),
        ),
        Order::OldestFirst => (
            filter.after.map(|c| first.unwrap_or(c)),
            last.filter(|_| more),
        ),
        Order::StoredAfter(_) => (None, last.filter(|_| more)),
    };
    Ok(LogPage {
        lines,
        older,
        newer,
        seq,
        tail,
    })
}

/// Every line `filter` selects, oldest first, read from Postgres as the caller consumes them
/// (one connection, rows as they arrive: never the whole result in memory). The filter's page
/// size and cursors do not apply.
pub fn export(
    pool: PgPool,
    filter: LogFilter,
) -> impl Stream<Item = Result<LogRecord, sqlx::Error>> + Send + 'static {
    async_stream::try_stream! {
        let mut query = select(&filter, None, Order::OldestFirst, None);
        let mut rows = query
            .build_query_as::<LogRecord>()
            .persistent(false)
            .fetch(&pool);
        while let Some(row) = rows.next().await {
            yield row?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_pattern_takes_wildcards_literally() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(contains_pattern("plain"), "%plain%");
    }
}
