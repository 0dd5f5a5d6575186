//! The log viewer's API against a real Postgres: filters combine and select what a direct query
//! of the store selects, keyset pages reach every line once in both directions, search is
//! case-insensitive with `%` and `_` taken literally, bad filters are 400s that say what to
//! fix, exports hold exactly the filtered lines, and fields sent with `log:entry` are stored.

use crate::common;

use app::models::{LogPage, LogRecord};
use axum::{
    body::{to_bytes, Body},
    http::{header, Request, StatusCode},
    Router,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;
use uuid::Uuid;

const R1: Uuid = Uuid::from_u128(0xa1);
const R2: Uuid = Uuid::from_u128(0xa2);
const R3: Uuid = Uuid::from_u128(0xb3);
/// Lines seeded by [`seed`].
const LINES: i64 = 600;

pub(crate) async fn router(pool: PgPool) -> Router {
    server::app(
        common::state(pool, Default::default()).await,
        server::http::access::Policy::local(),
        Default::default(),
    )
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, header::HeaderMap, String) {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 64 << 20)
        .await
        .expect("body");
    (
        status,
        headers,
        String::from_utf8(body.to_vec()).expect("utf-8 body"),
    )
}

pub(crate) async fn get(router: &Router, uri: &str) -> (StatusCode, header::HeaderMap, String) {
    send(
        router,
        Request::get(uri).body(Body::empty()).expect("request"),
    )
    .await
}

async fn page(router: &Router, query: &str) -> LogPage {
    let (status, _, body) = get(router, &format!("/api/logs?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    serde_json::from_str(&body).expect("a page")
}

/// Three runs of two pipelines and pipescope's own lines: 600 lines, three to a timestamp (so
/// the keyset's id breaks ties), every level, three steps, and messages that differ in case
/// and hold `%`, `_` and `\`.
async fn seed(pool: &PgPool) {
    sqlx::query(
        "INSERT INTO pipeline_executions (id, pipeline_name, status)
         VALUES ($1, 'alpha', 'completed'), ($2, 'alpha', 'failed'), ($3, 'beta', 'completed')",
    )
    .bind(R1)
    .bind(R2)
    .bind(R3)
    .execute(pool)
    .await
    .expect("runs");
    sqlx::query(
        "INSERT INTO log_entries (execution_id, step_name, level, message, context, logged_at)
         SELECT (ARRAY[$1, $2, $3, NULL]::uuid[])[1 + i % 4],
                CASE WHEN i % 4 = 3 THEN NULL ELSE (ARRAY['fetch', 'draft', 'review'])[1 + i % 3] END,
                (ARRAY['trace', 'debug', 'info', 'warn', 'error'])[1 + (i * 7) % 5],
                (ARRAY['Line', 'line', 'line', 'LINE', 'line', 'line'])[1 + i % 6] || ' ' || i || ': '
                  || (ARRAY['Disk 100% full', 'disk 100 full', 'user_id missing', 'userXid missing',
                            'path C:\\temp\\x', 'Timeout after 5s'])[1 + i % 6],
                CASE WHEN i % 10 = 0 THEN jsonb_build_object('i', i) ELSE '{}' END,
                timestamptz '2026-12-01 00:00:00Z' + (i / 3) * interval '1 second'
         FROM generate_series(0, $4 - 1) i",
    )
    .bind(R1)
    .bind(R2)
    .bind(R3)
    .bind(LINES)
    .execute(pool)
    .await
    .expect("lines");
}

/// Ids of the lines `condition` selects, oldest first, read directly (search by `strpos` on
/// lowercased text, not ILIKE, so the check does not share the code it checks).
async fn expected(pool: &PgPool, condition: &str) -> Vec<i64> {
    sqlx::query_scalar(&format!(
        "SELECT l.id FROM log_entries l LEFT JOIN pipeline_executions p ON p.id = l.execution_id
         WHERE {condition} ORDER BY l.logged_at, l.id"
    ))
    .fetch_all(pool)
    .await
    .expect("direct query")
}

/// Every line `query` selects, paging from the newest to the oldest `size` lines at a time.
async fn page_back(router: &Router, query: &str, size: u32) -> Vec<LogRecord> {
    let mut lines = Vec::new();
    let mut before = None;
    loop {
        let cursor = before.map(|c| format!("&before={c}")).unwrap_or_default();
        let page = page(router, &format!("{query}&limit={size}{cursor}")).await;
        assert!(page.lines.len() <= size as usize);
        let mut older = page.lines;
        older.append(&mut lines);
        lines = older;
        match page.older {
            Some(cursor) => before = Some(cursor),
            None => return lines,
        }
    }
}

fn ids(lines: &[LogRecord]) -> Vec<i64> {
    lines.iter().map(|l| l.id).collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn filters_combine_and_select_what_the_store_holds(pool: PgPool) {
    seed(&pool).await;
    let router = router(pool.clone()).await;
    let cases = [
        ("", "TRUE".to_owned()),
        ("level=warn,error", "l.level IN ('warn', 'error')".into()),
        ("pipeline=alpha", "p.pipeline_name = 'alpha'".into()),
        (&format!("run={R3}"), format!("l.execution_id = '{R3}'")),
        ("step=draft&level=info", "l.step_name = 'draft' AND l.level = 'info'".into()),
        (
            "from=2026-12-01T00:00:30Z&to=2026-12-01T00:01:10Z",
            "l.logged_at >= '2026-12-01T00:00:30Z' AND l.logged_at < '2026-12-01T00:01:10Z'".into(),
        ),
        ("q=LINE%201", "strpos(lower(l.message), 'line 1') > 0".into()),
        (
            "pipeline=alpha&level=error,debug&step=review&q=missing&from=2026-12-01T00:00:10Z&to=2026-12-01T00:02:00Z",
            "p.pipeline_name = 'alpha' AND l.level IN ('error', 'debug') AND l.step_name = 'review'
             AND strpos(l.message, 'missing') > 0
             AND l.logged_at >= '2026-12-01T00:00:10Z' AND l.logged_at < '2026-12-01T00:02:00Z'"
                .into(),
        ),
        ("pipeline=nope", "FALSE".into()),
    ];
    for (query, condition) in cases {
        let want = expected(&pool, &condition).await;
        let got = page_back(&router, query, 37).await;
        assert_eq!(ids(&got), want, "{query}");
        // The newest page on its own is the filter's newest lines.
        let newest = page(&router, &format!("{query}&limit=10")).await;
        assert_eq!(ids(&newest.lines), want[want.len().saturating_sub(10)..]);
        assert_eq!(newest.newer, None, "nothing is newer than the tail");
    }
    // Each line carries its run's pipeline, its step and its context.
    let all = page_back(&router, "", 1000).await;
    assert_eq!(all.len() as i64, LINES);
    let first = &all[0];
    assert_eq!(
        (first.run, first.pipeline.as_deref(), first.step.as_deref()),
        (Some(R1), Some("alpha"), Some("fetch"))
    );
    assert_eq!(
        first.context,
        json!({"i": 0}).as_object().cloned().expect("map")
    );
    assert!(all[3].run.is_none() && all[3].pipeline.is_none() && all[3].step.is_none());
}

#[sqlx::test(migrations = "../migrations")]
async fn paging_older_then_newer_reaches_every_line_exactly_once(pool: PgPool) {
    seed(&pool).await;
    let router = router(pool.clone()).await;
    let want = expected(&pool, "TRUE").await;

    // Back from the tail to the first line, 41 at a time (pages end inside runs of equal times).
    let mut back: Vec<LogPage> = Vec::new();
    let mut query = "limit=41".to_owned();
    loop {
        let page = page(&router, &query).await;
        let older = page.older;
        back.push(page);
        match older {
            Some(cursor) => query = format!("limit=41&before={cursor}"),
            None => break,
        }
    }
    let mut seen: Vec<i64> = back.iter().rev().flat_map(|p| ids(&p.lines)).collect();
    assert_eq!(seen, want);

    // Then forward from the first page to the tail, 29 at a time.
    let first = back.last().expect("a page");
    seen = ids(&first.lines);
    let mut after = first.newer.expect("newer lines than the first page");
    loop {
        let page = page(&router, &format!("limit=29&after={after}")).await;
        seen.extend(ids(&page.lines));
        match page.newer {
            Some(cursor) => after = cursor,
            None => break,
        }
    }
    assert_eq!(seen, want);

    // Past either end: empty pages that still point back the way they came.
    let oldest = page(
        &router,
        &format!("before={}", back.last().expect("page").lines[0].cursor()),
    )
    .await;
    assert!(oldest.lines.is_empty() && oldest.older.is_none());
    let tail = page(&router, "limit=1").await;
    let cursor = tail.lines[0].cursor();
    let beyond = page(&router, &format!("after={cursor}")).await;
    assert!(beyond.lines.is_empty() && beyond.newer.is_none());
    assert_eq!(beyond.older, Some(cursor));
}

#[sqlx::test(migrations = "../migrations")]
async fn search_ignores_case_and_takes_wildcards_literally(pool: PgPool) {
    seed(&pool).await;
    let router = router(pool.clone()).await;
    let count = |query: &'static str| {
        let router = router.clone();
        async move {
            page_back(&router, &format!("q={query}"), 1000)
                .await
                .into_iter()
                .map(|l| l.message)
                .collect::<Vec<_>>()
        }
    };
    // `100%` is not "100 and anything": only the lines with a literal percent sign.
    let percent = count("100%25").await;
    assert_eq!(percent.len(), 100);
    assert!(percent.iter().all(|m| m.contains("Disk 100% full")));
    // `_` is not any character: userXid does not match user_id.
    let underscore = count("USER_ID").await;
    assert_eq!(underscore.len(), 100);
    assert!(underscore.iter().all(|m| m.contains("user_id")));
    // Case: "Line", "line" and "LINE" all match; "timeout" matches "Timeout".
    assert_eq!(count("line").await.len() as i64, LINES);
    assert_eq!(count("tImEoUt").await.len(), 100);
    // A backslash is a character too.
    assert_eq!(count("c%3A%5Ctemp%5C").await.len(), 100);
    assert_eq!(count("no%20such%20text").await.len(), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn since_reads_the_lines_stored_after_a_page_whatever_their_times(pool: PgPool) {
    seed(&pool).await;
    let router = router(pool.clone()).await;
    let shown = page(&router, &format!("run={R1}&limit=50")).await;
    let tail = shown.tail;
    assert_eq!(Some(tail), expected(&pool, "TRUE").await.last().copied());

    // Stored after the page: one older than every line, one among them, one newer, and one of
    // another run, which the filter leaves out.
    let late: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO log_entries (execution_id, level, message, logged_at)
         VALUES ($1, 'info', 'before all', '2026-11-30 00:00:00Z'),
                ($1, 'warn', 'among them', '2026-12-01 00:01:00.5Z'),
                ($2, 'info', 'another run', '2026-12-02 00:00:00Z'),
                ($1, 'error', 'newest', '2026-12-02 00:00:00Z')
         RETURNING id",
    )
    .bind(R1)
    .bind(R2)
    .fetch_all(&pool)
    .await
    .expect("late lines");

    let read = page(&router, &format!("run={R1}&since={tail}")).await;
    assert_eq!(
        ids(&read.lines),
        [late[0], late[1], late[3]],
        "in stored order"
    );
    assert_eq!(read.tail, late[3]);
    assert!(read.older.is_none() && read.newer.is_none());

    // A page at a time: `newer` names where the next one starts.
    let first = page(&router, &format!("run={R1}&since={tail}&limit=2")).await;
    assert_eq!(ids(&first.lines), [late[0], late[1]]);
    let next = first.newer.expect("one more line").id;
    let rest = page(&router, &format!("run={R1}&since={next}&limit=2")).await;
    assert_eq!(ids(&rest.lines), [late[3]]);
    assert!(rest.newer.is_none());

    // Nothing stored since: nothing, and the tail where it was.
    let none = page(&router, &format!("since={}", read.tail)).await;
    assert!(none.lines.is_empty());
    assert_eq!(none.tail, read.tail);
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_filters_are_400s_that_say_what_to_fix(pool: PgPool) {
    let router = router(pool).await;
    let cases = [
        (
            "/api/logs?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            "to",
            "the time range is reversed",
        ),
        (
            "/api/logs?level=info,fatal",
            "level",
            "unknown level \"fatal\"",
        ),
        ("/api/logs?limit=100000", "limit", "over the limit of 1000"),
        ("/api/logs?before=yesterday", "before", "not a cursor"),
        ("/api/logs?since=-4", "since", "a line's id"),
        (
            "/api/logs?since=4&before=1_1",
            "since",
            "without `before` or `after`",
        ),
        ("/api/logs?run=7", "run", "a UUID"),
        ("/api/logs?q=ab", "q", "at least 3 characters"),
        ("/api/logs/export?level=loud", "level", "unknown level"),
        (
            "/api/logs/export?format=csv",
            "format",
            "use `text` or `jsonl`",
        ),
    ];
    for (uri, field, message) in cases {
        let (status, _, body) = get(&router, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        let error: Value = serde_json::from_str(&body).expect("a JSON error");
        assert_eq!(error["path"], field, "{uri}: {body}");
        assert!(
            error["error"].as_str().is_some_and(|e| e.contains(message)),
            "{uri}: {body}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn exports_hold_exactly_the_filtered_lines(pool: PgPool) {
    seed(&pool).await;
    let router = router(pool.clone()).await;
    let filter = "pipeline=alpha&level=warn,error,info&q=line";
    let want = expected(
        &pool,
        "p.pipeline_name = 'alpha' AND l.level IN ('warn', 'error', 'info')
         AND strpos(lower(l.message), 'line') > 0",
    )
    .await;
    assert!(want.len() > 50, "a filter that selects a good share");

    // The page size and cursors do not cut an export short.
    let (status, headers, body) = get(
        &router,
        &format!("/api/logs/export?{filter}&format=jsonl&limit=5&before=0_0"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-ndjson");
    let disposition = headers[header::CONTENT_DISPOSITION]
        .to_str()
        .expect("ascii");
    assert!(
        disposition.starts_with("attachment; filename=\"pipescope-logs-")
            && disposition.ends_with(".jsonl\""),
        "{disposition}"
    );
    let lines: Vec<LogRecord> = body
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(ids(&lines), want);
    assert_eq!(lines, page_back(&router, filter, 1000).await);

    let (status, headers, body) =
        get(&router, &format!("/api/logs/export?{filter}&format=text")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    let text: Vec<&str> = body.lines().collect();
    assert_eq!(text.len(), want.len());
    for (line, record) in text.iter().zip(&lines) {
        assert!(line.starts_with(&record.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()));
        assert!(
            line.contains(&format!("[alpha {}", record.run.expect("a run"))),
            "{line}"
        );
        assert!(line.contains(&record.message), "{line}");
    }
    // With no format named, text.
    let (_, headers, _) = get(&router, "/api/logs/export?level=error").await;
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
}

#[sqlx::test(migrations = "../migrations")]
async fn fields_sent_with_a_log_entry_are_stored_and_read_back(pool: PgPool) {
    let router = router(pool.clone()).await;
    let run = Uuid::from_u128(0xfeed);
    let events = json!([
        {"event": "pipeline:started", "data": {"execution_id": run, "pipeline": "ingested",
          "started_at": "2026-12-06T10:00:00Z"}},
        {"event": "log:entry", "data": {"level": "warn", "message": "rate limited, retrying",
          "timestamp": "2026-12-06T10:00:01Z",
          "context": {"execution_id": run, "step": "draft",
                      "fields": {"attempt": 2, "status": 429, "provider": {"name": "openai"}}}}},
        {"event": "log:entry", "data": {"level": "info", "message": "plain line",
          "timestamp": "2026-12-06T10:00:02Z"}}
    ]);
    let request = Request::post("/api/ingest/events")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(events.to_string()))
        .expect("request");
    let before = page(&router, "").await;
    assert_eq!(before.seq, None, "nothing stored yet");
    let (status, _, body) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let receipt: Value = serde_json::from_str(&body).expect("a receipt");

    let stored: Vec<(String, Value)> =
        sqlx::query_as("SELECT message, context FROM log_entries ORDER BY logged_at")
            .fetch_all(&pool)
            .await
            .expect("rows");
    assert_eq!(
        stored,
        vec![
            (
                "rate limited, retrying".to_owned(),
                json!({"attempt": 2, "status": 429, "provider": {"name": "openai"}})
            ),
            ("plain line".to_owned(), json!({})),
        ]
    );
    let page = page(&router, &format!("run={run}")).await;
    assert_eq!(page.lines.len(), 1);
    // The page names the last stored event: live events continue from there.
    assert_eq!(page.seq, receipt["seqs"][2].as_i64());
    let line = &page.lines[0];
    assert_eq!(line.pipeline.as_deref(), Some("ingested"));
    assert_eq!(line.step.as_deref(), Some("draft"));
    assert_eq!(line.context["status"], 429);
}
