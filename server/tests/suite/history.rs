//! The history's API against a real Postgres: filters combine and select what a direct query of
//! the store selects, keyset pages in each order reach every run once (ties in the sort key
//! included), the full-text search finds words in prompts and responses, bad filters are 400s
//! that say what to fix, the search index follows the steps' texts (off the ingest path: a step
//! is found once indexed, and a page says how many wait), and exports hold exactly the filtered runs in the page's order.

use crate::logs::{get, router};

use app::models::{HistoryPage, HistoryRun, RunStatus};
use axum::{
    http::{header, StatusCode},
    Router,
};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Runs seeded by [`seed`].
const RUNS: i64 = 60;
const BATCH: Uuid = Uuid::from_u128(0xba7c);

async fn page(router: &Router, query: &str) -> HistoryPage {
    let (status, _, body) = get(router, &format!("/api/history?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    serde_json::from_str(&body).expect("a page")
}

/// 60 runs of three pipelines, two to a start time (so the keyset's id breaks ties), durations
/// and costs that repeat, a few running (no duration), failed and cancelled ones, a batch, and
/// two step attempts each: one to openai or anthropic (two models), one to the simulated
/// provider, with prompts and responses holding words to search for.
async fn seed(pool: &PgPool) {
    sqlx::query(
        "INSERT INTO pipeline_executions (id, pipeline_name, status, batch_id, started_at,
                                          duration_ms, cost_usd, total_tokens)
         SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(1000 + (i * 7919) % 4096), 12, '0'))::uuid,
                (ARRAY['alpha', 'beta', 'gamma'])[1 + i % 3],
                CASE WHEN i % 10 = 0 THEN 'failed' WHEN i % 10 = 1 THEN 'cancelled'
                     WHEN i % 15 = 2 THEN 'running' ELSE 'completed' END,
                CASE WHEN i % 4 = 0 THEN $1::uuid END,
                timestamptz '2026-12-01 00:00:00Z' + (i / 2) * interval '1 minute',
                CASE WHEN i % 15 = 2 THEN NULL ELSE (i * 37) % 500 END,
                ((i * 13) % 7) * 0.001,
                i * 10
         FROM generate_series(0, $2 - 1) i",
    )
    .bind(BATCH)
    .bind(RUNS)
    .execute(pool)
    .await
    .expect("runs");
    sqlx::query(
        "INSERT INTO step_executions (execution_id, step_name, status, provider, model, prompt,
                                      response, started_at)
         SELECT e.id, s.name, 'completed',
                CASE WHEN s.n = 2 THEN 'simulated'
                     WHEN e.n % 2 = 0 THEN 'openai' ELSE 'anthropic' END,
                CASE WHEN s.n = 2 THEN 'echo'
                     WHEN e.n % 4 < 2 THEN 'model-a' ELSE 'model-b' END,
                'Tell me about topic' || (e.n % 5),
                CASE WHEN e.n % 7 = 0 AND s.n = 2 THEN 'The Zebra crossing is busy today'
                     ELSE 'Nothing special here' END,
                e.started_at
         FROM (SELECT id, started_at, total_tokens / 10 AS n FROM pipeline_executions) e,
              (VALUES (1, 'draft'), (2, 'check')) s(n, name)",
    )
    .execute(pool)
    .await
    .expect("steps");
    // What the server's indexer does in the background, done here before anything is read.
    server::db::search::index_all(pool).await.expect("indexed");
}

/// Ids of the runs `condition` selects in `order`, read directly (search by `strpos` on
/// lowercased text, not full-text search, so the check does not share the code it checks).
async fn expected(pool: &PgPool, condition: &str, order: &str) -> Vec<Uuid> {
    sqlx::query_scalar(&format!(
        "SELECT e.id FROM pipeline_executions e WHERE {condition} ORDER BY {order}"
    ))
    .fetch_all(pool)
    .await
    .expect("direct query")
}

/// Every run `query` selects, `size` at a time from the first page to the last.
async fn page_through(router: &Router, query: &str, size: u32) -> Vec<HistoryRun> {
    let mut runs = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cursor = after
            .map(|c| format!("&after={}", urlencoding(&c)))
            .unwrap_or_default();
        let page = page(router, &format!("{query}&limit={size}{cursor}")).await;
        assert!(page.runs.len() <= size as usize);
        runs.extend(page.runs);
        match page.next {
            Some(next) => after = Some(next.to_string()),
            None => return runs,
        }
    }
}

/// A cursor holds digits, `.`, `-`, `_` and hex: nothing to encode but to be sure.
fn urlencoding(text: &str) -> String {
    text.replace('%', "%25").replace('+', "%2B")
}

fn ids(runs: &[HistoryRun]) -> Vec<Uuid> {
    runs.iter().map(|r| r.run.id).collect()
}

const ORDERS: [(&str, &str); 4] = [
    ("", "e.started_at DESC, e.id DESC"),
    ("sort=oldest", "e.started_at, e.id"),
    ("sort=duration", "e.duration_ms DESC NULLS LAST, e.id DESC"),
    ("sort=cost", "e.cost_usd DESC, e.id DESC"),
];

#[sqlx::test(migrations = "../migrations")]
async fn filters_combine_and_pages_reach_every_run_once_in_each_order(pool: PgPool) {
    seed(&pool).await;
    let router = router(pool.clone()).await;
    let has_step = |condition: &str| {
        format!(
            "EXISTS (SELECT 1 FROM step_executions s WHERE s.execution_id = e.id AND {condition})"
        )
    };
    let cases = [
        ("", "TRUE".to_owned()),
        ("pipeline=beta", "e.pipeline_name = 'beta'".into()),
        (
            "status=failed,cancelled",
            "e.status IN ('failed', 'cancelled')".into(),
        ),
        ("status=running", "e.status = 'running'".into()),
        ("provider=openai", has_step("s.provider = 'openai'")),
        (
            "provider=anthropic&model=model-b",
            has_step("s.provider = 'anthropic' AND s.model = 'model-b'"),
        ),
        ("model=model-a", has_step("s.model = 'model-a'")),
        (&format!("batch={BATCH}"), format!("e.batch_id = '{BATCH}'")),
        (
            "from=2026-12-01T00:05:00Z&to=2026-12-01T00:20:00Z",
            "e.started_at >= '2026-12-01T00:05:00Z' AND e.started_at < '2026-12-01T00:20:00Z'"
                .into(),
        ),
        (
            "q=zebra",
            has_step("strpos(lower(s.response), 'zebra') > 0"),
        ),
        (
            "q=TOPIC3",
            has_step("strpos(lower(s.prompt), 'topic3') > 0"),
        ),
        ("q=%22crossing%20is%22%20-today", "FALSE".into()),
        (
            "pipeline=alpha&status=completed&provider=openai&q=topic2",
            format!(
                "e.pipeline_name = 'alpha' AND e.status = 'completed' AND {} AND {}",
                has_step("s.provider = 'openai'"),
                has_step("strpos(s.prompt, 'topic2') > 0")
            ),
        ),
        ("pipeline=nope", "FALSE".into()),
    ];
    for (query, condition) in &cases {
        for (sort, order) in ORDERS {
            let query = format!("{query}&{sort}");
            let want = expected(&pool, condition, order).await;
            let got = page_through(&router, &query, 7).await;
            assert_eq!(ids(&got), want, "{query}");
            // The first page on its own is the filter's first runs.
            let first = page(&router, &format!("{query}&limit=5")).await;
            assert_eq!(ids(&first.runs), want[..want.len().min(5)], "{query}");
            assert_eq!(first.next.is_some(), want.len() > 5, "{query}");
        }
    }
    // Sanity of the seed: the cases are not all empty, and the search matched something.
    assert_eq!(expected(&pool, "TRUE", "e.id").await.len() as i64, RUNS);
    assert!(!expected(&pool, &cases[9].1, "e.id").await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_run_carries_its_summary_duration_and_models(pool: PgPool) {
    seed(&pool).await;
    let router = router(pool.clone()).await;
    let all = page(&router, "limit=500").await;
    assert_eq!(all.runs.len() as i64, RUNS);
    assert_eq!(all.next, None);
    // Run number 4 of the seed: beta (4 % 3 = 1), completed, in the batch, duration 148 ms
    // (the only one), cost 0.003, 40 tokens, openai's model-a and the simulated echo.
    let run = all
        .runs
        .iter()
        .find(|r| r.duration_ms == Some(148))
        .expect("run 4");
    assert_eq!(run.run.pipeline, "beta");
    assert_eq!(run.run.status, RunStatus::Completed);
    assert_eq!(run.batch_id, Some(BATCH));
    assert_eq!(run.models, vec!["openai/model-a", "simulated/echo"]);
    assert_eq!(run.run.steps_started, 2);
    assert_eq!(run.run.total_tokens, 40);
    assert!(
        (run.run.cost_usd - 0.003).abs() < 1e-9,
        "{}",
        run.run.cost_usd
    );
    // The default page size.
    assert_eq!(page(&router, "").await.runs.len(), 50);
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_filters_are_refused_with_what_to_fix(pool: PgPool) {
    let router = router(pool).await;
    let cases = [
        (
            "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            "to",
            "reversed",
        ),
        ("from=2026-13-01", "from", "RFC 3339"),
        ("status=done", "status", "the statuses are"),
        ("limit=1000000", "limit", "over the limit of 500"),
        ("limit=-1", "limit", "whole number"),
        ("sort=price", "sort", "newest, oldest, duration, cost"),
        ("batch=12", "batch", "UUID"),
        ("after=yesterday", "after", "cursor"),
        (
            "after=0.005000_00000000-0000-0000-0000-000000000001",
            "after",
            "order `newest`",
        ),
        ("q=%27%3B%20--", "q", "no letter or digit"),
    ];
    for (query, path, words) in cases {
        let (status, _, body) = get(&router, &format!("/api/history?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let error: Value = serde_json::from_str(&body).expect("a JSON error");
        assert_eq!(error["path"], path, "{query}: {body}");
        let message = error["error"].as_str().expect("a message");
        assert!(message.contains(words), "{query}: {message}");
        let (status, _, _) = get(&router, &format!("/api/history/export?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "export {query}");
    }
    let (status, _, body) = get(&router, "/api/history/export?format=xlsx").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("`csv` or `jsonl`"), "{body}");
    // Text that looks like SQL is searched for, not run.
    let (status, _, body) = get(
        &router,
        "/api/history?q=x%27%29%3B%20DROP%20TABLE%20pipeline_executions%3B%20--",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[sqlx::test(migrations = "../migrations")]
async fn exports_hold_exactly_the_filtered_runs_in_order(pool: PgPool) {
    seed(&pool).await;
    let router = router(pool.clone()).await;
    let want = expected(
        &pool,
        "e.status IN ('failed', 'completed') AND e.pipeline_name = 'gamma'",
        "e.cost_usd DESC, e.id DESC",
    )
    .await;
    assert!(want.len() > 5);
    let filter = "status=failed,completed&pipeline=gamma&sort=cost&limit=2";

    let (status, headers, body) =
        get(&router, &format!("/api/history/export?{filter}&format=csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let disposition = headers[header::CONTENT_DISPOSITION]
        .to_str()
        .expect("ascii");
    assert!(disposition.starts_with("attachment; filename=\"pipescope-history-"));
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header_row = reader.headers().expect("a header").clone();
    assert_eq!(&header_row[0], "id");
    assert_eq!(&header_row[13], "models");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    let got: Vec<Uuid> = rows.iter().map(|r| r[0].parse().expect("an id")).collect();
    assert_eq!(got, want, "every run, not a page of them");
    assert!(rows.iter().all(|r| &r[1] == "gamma"));

    let (status, headers, body) = get(
        &router,
        &format!("/api/history/export?{filter}&format=jsonl"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-ndjson");
    let runs: Vec<HistoryRun> = body
        .lines()
        .map(|line| serde_json::from_str(line).expect("a run per line"))
        .collect();
    assert_eq!(ids(&runs), want);

    // Nothing selected: the header alone.
    let (_, _, body) = get(&router, "/api/history/export?pipeline=nope").await;
    assert_eq!(body.lines().count(), 1);
}

/// Each order is a walk of its own index from the cursor, and the search uses the text index
/// (on an empty store the planner would scan anything; with sequential scans off it shows
/// which index it can use at all).
#[sqlx::test(migrations = "../migrations")]
async fn each_order_and_the_search_have_an_index(pool: PgPool) {
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .expect("set");
    let id = "'00000000-0000-0000-0000-000000000001'";
    let cases = [
        (
            "newest, from a cursor",
            format!("SELECT id FROM pipeline_executions e WHERE (e.started_at, e.id) < ('2026-12-01', {id}) ORDER BY e.started_at DESC, e.id DESC LIMIT 51"),
            "pipeline_executions_by_time",
        ),
        (
            "a pipeline's, oldest first",
            format!("SELECT id FROM pipeline_executions e WHERE e.pipeline_name = 'x' AND (e.started_at, e.id) > ('2026-12-01', {id}) ORDER BY e.started_at, e.id LIMIT 51"),
            "pipeline_executions_by_pipeline",
        ),
        (
            "one status",
            "SELECT id FROM pipeline_executions e WHERE e.status = ANY('{failed}') ORDER BY e.started_at DESC, e.id DESC LIMIT 51".into(),
            "pipeline_executions_by_status",
        ),
        (
            "longest first",
            format!("SELECT id FROM pipeline_executions e WHERE (COALESCE(e.duration_ms, -1), e.id) < (5, {id}) ORDER BY COALESCE(e.duration_ms, -1) DESC, e.id DESC LIMIT 51"),
            "pipeline_executions_by_duration",
        ),
        (
            "most expensive first",
            format!("SELECT id FROM pipeline_executions e WHERE (e.cost_usd, e.id) < ('0.5'::numeric, {id}) ORDER BY e.cost_usd DESC, e.id DESC LIMIT 51"),
            "pipeline_executions_by_cost",
        ),
        (
            "words in prompts and responses",
            "SELECT f.execution_id FROM step_search f WHERE f.document @@ websearch_to_tsquery('simple', 'zebra')".into(),
            "step_search_document",
        ),
    ];
    crate::schema::assert_plans_use(&mut conn, cases).await;
}

/// The writer only queues a step whose texts changed; the search finds it once the indexer has
/// run, and meanwhile a search's page says how many steps wait. A new response is indexed
/// again, texts cleared by retention take the step out of the search, and an update that
/// leaves the texts alone queues nothing.
#[sqlx::test(migrations = "../migrations")]
async fn the_search_index_follows_the_texts_and_says_what_waits(pool: PgPool) {
    seed(&pool).await;
    let router = router(pool.clone()).await;
    let found = |page: &HistoryPage| ids(&page.runs);
    let run = Uuid::from_u128(0x5ea7c4);
    sqlx::query(
        "INSERT INTO pipeline_executions (id, pipeline_name, status) VALUES ($1, 'delta', 'running')",
    )
    .bind(run)
    .execute(&pool)
    .await
    .expect("run");
    sqlx::query(
        "INSERT INTO step_executions (execution_id, step_name, status, prompt)
         VALUES ($1, 'ask', 'running', 'Where is the okapi?')",
    )
    .bind(run)
    .execute(&pool)
    .await
    .expect("step");

    // Stored, queued, not found yet, and the page says so.
    let waiting = page(&router, "q=okapi").await;
    assert_eq!(found(&waiting), Vec::<Uuid>::new());
    assert_eq!(waiting.unindexed, 1);
    // Without a search nothing is counted.
    assert_eq!(page(&router, "").await.unindexed, 0);
    server::db::search::index_all(&pool).await.expect("indexed");
    let indexed = page(&router, "q=okapi").await;
    assert_eq!((found(&indexed), indexed.unindexed), (vec![run], 0));

    // The response arrives: queued again, found by its words once indexed.
    sqlx::query(
        "UPDATE step_executions SET response = 'Behind the quagga' WHERE execution_id = $1",
    )
    .bind(run)
    .execute(&pool)
    .await
    .expect("response");
    assert_eq!(page(&router, "q=quagga").await.unindexed, 1);
    server::db::search::index_all(&pool).await.expect("indexed");
    assert_eq!(found(&page(&router, "q=quagga").await), vec![run]);
    assert_eq!(found(&page(&router, "q=okapi").await), vec![run]);

    // Status and tokens change: nothing to index.
    sqlx::query(
        "UPDATE step_executions SET status = 'completed', total_tokens = 9 WHERE execution_id = $1",
    )
    .bind(run)
    .execute(&pool)
    .await
    .expect("completed");
    assert_eq!(page(&router, "q=okapi").await.unindexed, 0);

    // Texts cleared (what retention does): the step leaves the search.
    sqlx::query(
        "UPDATE step_executions SET prompt = NULL, response = NULL WHERE execution_id = $1",
    )
    .bind(run)
    .execute(&pool)
    .await
    .expect("cleared");
    server::db::search::index_all(&pool).await.expect("indexed");
    assert_eq!(found(&page(&router, "q=okapi").await), Vec::<Uuid>::new());
    let documents: i64 =
        sqlx::query_scalar("SELECT count(*) FROM step_search WHERE execution_id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(documents, 0);

    // A deleted run takes its documents with it; the other runs are still found.
    let zebras = found(&page(&router, "q=zebra&limit=200").await);
    assert!(zebras.len() > 1, "the seed has zebras: {zebras:?}");
    sqlx::query("DELETE FROM pipeline_executions WHERE id = $1")
        .bind(zebras[0])
        .execute(&pool)
        .await
        .expect("deleted");
    assert_eq!(
        found(&page(&router, "q=zebra&limit=200").await),
        zebras[1..]
    );
}
