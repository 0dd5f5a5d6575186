//! Reads of the `events` table: resumes beyond the in-memory window, the relay between
//! instances, and the ingest API's checks.

use app::models::{Event, EventBody};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::projection::Origin;

type Row = (i64, DateTime<Utc>, serde_json::Value);

/// The event log's `data` of an event `e` as it was published: a `prompt:sent` or
/// `response:received` stored without its texts (`step_attempt` set, see
/// `projection::PROMPT_FIELDS_IN_STEP`) gets them back from its step's row. A subquery in the
/// branch, not a join: only those events look a row up, and the plan of a page stays the primary
/// key's range scan (a join made it a parallel plan costing ~35 ms more a page at 1,000,000
/// steps). `jsonb` orders keys the same way however an object was built, so the text is the one
/// the event was stored with.
macro_rules! event_data {
    () => {
        "CASE WHEN e.step_attempt IS NULL THEN e.payload->'data'
              ELSE e.payload->'data' || COALESCE(
                  (SELECT CASE e.name
                              WHEN 'prompt:sent' THEN jsonb_build_object(
                                  'prompt', COALESCE(s.prompt, ''), 'template', COALESCE(s.template, ''),
                                  'variables', COALESCE(s.variables, 'null'::jsonb))
                              ELSE jsonb_build_object('response', COALESCE(s.response, '')) END
                   FROM step_executions s
                   WHERE s.execution_id = e.execution_id AND s.step_name = e.step_name
                     AND s.attempt = e.step_attempt),
                  CASE e.name WHEN 'prompt:sent' THEN '{\"prompt\": \"\", \"template\": \"\", \"variables\": null}'::jsonb
                              ELSE '{\"response\": \"\"}'::jsonb END)
         END"
    };
}

/// The whole stored event, `{"event": …, "data": …}`.
macro_rules! event_payload {
    () => {
        concat!(
            "CASE WHEN e.step_attempt IS NULL THEN e.payload ELSE jsonb_set(e.payload, '{data}', ",
            event_data!(),
            ") END"
        )
    };
}

fn event_from_row((seq, at, payload): Row) -> Option<Event> {
    match serde_json::from_value::<EventBody>(payload) {
        Ok(body) => Some(Event { seq, at, body }),
        Err(error) => {
            tracing::warn!("skipping stored event {seq}: {error}");
            None
        }
    }
}

/// What a resume from the store will send: how many persisted events lie in
/// `after < seq < before`, counted no further than `limit` (a client further behind is told to
/// resync, so nothing past that is worth counting), and the newest of those counted.
pub async fn count_after(
    pool: &PgPool,
    after: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    // An index-only range scan of the primary key that stops at `limit` rows.
    sqlx::query_as(
        "SELECT count(*), max(seq) FROM (
             SELECT seq FROM events WHERE seq > $1 AND seq < $2 ORDER BY seq LIMIT $3
         ) AS counted",
    )
    .bind(after)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_one(pool)
    .await
}

/// A stored event with its `data` as JSON text, to be sent on without being decoded.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredText {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub name: String,
    /// As `jsonb` prints it: the same value the event was stored with, keys in `jsonb`'s order.
    pub data: String,
}

/// Who a page of stored events is for: everyone, or a client following one execution (and
/// optionally one of its steps).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Follow<'a> {
    pub execution: Option<Uuid>,
    pub step: Option<&'a str>,
}

/// One page of a resume: the persisted events with `after < seq <= through` that `follow`
/// lets through, oldest first, at most `limit`. The next page starts after the last seq.
pub async fn page_after(
    pool: &PgPool,
    after: i64,
    through: i64,
    follow: Follow<'_>,
    limit: i64,
) -> Result<Vec<StoredText>, sqlx::Error> {
    let Some(execution) = follow.execution else {
        return sqlx::query_as(concat!(
            "SELECT e.seq, e.at, e.name, (",
            event_data!(),
            ")::text AS data FROM events e WHERE e.seq > $1 AND e.seq <= $2 ORDER BY e.seq LIMIT $3"
        ))
        .bind(after)
        .bind(through)
        .bind(limit)
        .fetch_all(pool)
        .await;
    };
    // The rule of `bus::Filter::matches`, on the columns the writer fills from the event's
    // scope: that execution (and step), plus bus signals, which concern every subscriber. The
    // bus signals have no index of their own, so the plan walks the seq range once (over all
    // pages together: each starts where the last ended) rather than `events_by_execution`.
    sqlx::query_as(concat!(
        "SELECT e.seq, e.at, e.name, (",
        event_data!(),
        ")::text AS data FROM events e WHERE e.seq > $1 AND e.seq <= $2
            AND (e.execution_id = $3 AND ($4::text IS NULL OR e.step_name = $4)
                 OR e.execution_id IS NULL AND e.name IN ('bus:heartbeat', 'bus:resync'))
          ORDER BY e.seq LIMIT $5"
    ))
    .bind(after)
    .bind(through)
    .bind(execution)
    .bind(follow.step)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One instance's events of one flushed batch.
pub async fn read_range(
    pool: &PgPool,
    origin: Uuid,
    from: i64,
    to: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "SELECT e.seq, e.at, ",
        event_payload!(),
        " FROM events e WHERE e.origin = $1 AND e.seq BETWEEN $2 AND $3 ORDER BY e.seq"
    ))
    .bind(origin)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(event_from_row).collect())
}

/// Which of `ids` were already stored (ingest idempotency).
pub async fn stored_client_ids(pool: &PgPool, ids: &[String]) -> Result<Vec<String>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT client_id FROM events WHERE client_id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await
}

/// Which of `ids` are executions the store knows, and who reported each.
pub async fn known_executions(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Origin)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, source FROM pipeline_executions WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(pool)
            .await?;
    rows.into_iter()
        .map(|(id, source)| {
            Origin::try_from(source)
                .map(|origin| (id, origin))
                .map_err(|e| sqlx::Error::Decode(e.into()))
        })
        .collect()
}

/// Which of the (execution, step) pairs have a stored attempt.
pub async fn known_steps(
    pool: &PgPool,
    pairs: &[(Uuid, String)],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, steps): (Vec<Uuid>, Vec<&str>) =
        pairs.iter().map(|(id, step)| (*id, step.as_str())).unzip();
    sqlx::query_as(
        "SELECT DISTINCT s.execution_id, s.step_name
         FROM UNNEST($1::uuid[], $2::text[]) AS p(execution_id, step_name)
         JOIN step_executions s USING (execution_id, step_name)",
    )
    .bind(ids)
    .bind(steps)
    .fetch_all(pool)
    .await
}

/// The stored events of one execution, oldest first, at most `limit` (the newest ones when
/// there are more).
pub async fn of_execution(pool: &PgPool, id: Uuid, limit: i64) -> Result<Vec<Event>, sqlx::Error> {
    let mut rows: Vec<Row> = sqlx::query_as(concat!(
        "SELECT e.seq, e.at, ",
        event_payload!(),
        " FROM events e WHERE e.execution_id = $1 ORDER BY e.seq DESC LIMIT $2"
    ))
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.reverse();
    Ok(rows.into_iter().filter_map(event_from_row).collect())
}
