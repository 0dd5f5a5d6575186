//! The live event backbone against a real Postgres and a real HTTP SSE client.

use crate::common;

use std::time::Duration;

use crate::common::{connect, ingest, log, log_event, serve, state};
use app::models::{
    events::{LogContext, LogEntry, LogLevel, StepProgress},
    EventBody,
};
use serde_json::json;
use server::{
    bus::{Delivered, Filter, Next, Replay},
    state::BackboneSettings,
};
use sqlx::PgPool;
use uuid::Uuid;

fn messages(frames: &[common::Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| match f.decode().body {
            EventBody::LogEntry(e) => e.message,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// A complete run as another program would report it.
fn run_events(execution: Uuid, prefix: &str) -> serde_json::Value {
    let now = chrono::Utc::now();
    json!([
        {"id": format!("{prefix}-0"), "event": "pipeline:started", "data": {
            "execution_id": execution, "pipeline": "research-brief",
            "config": {"steps": 1}, "inputs": {"topic": "event sourcing"}, "started_at": now}},
        {"id": format!("{prefix}-1"), "event": "step:started", "data": {
            "execution_id": execution, "step": "outline", "provider": "simulated",
            "model": "sim-small", "attempt": 1, "token_budget": 512}},
        {"id": format!("{prefix}-2"), "event": "prompt:sent", "data": {
            "execution_id": execution, "step": "outline", "prompt": "Write an outline about event sourcing.",
            "template": "Write an outline about {{ topic }}.", "variables": {"topic": "event sourcing"},
            "token_count": 9}},
        {"id": format!("{prefix}-3"), "event": "response:received", "data": {
            "execution_id": execution, "step": "outline", "response": "1. Events\n2. Projections",
            "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}, "ttft_ms": 12}},
        {"id": format!("{prefix}-4"), "event": "step:completed", "data": {
            "execution_id": execution, "step": "outline", "duration_ms": 140, "tokens": 16,
            "cost_usd": 0.0004, "status": "completed"}},
        {"id": format!("{prefix}-5"), "event": "log:entry", "data": {
            "level": "info", "message": "outline done", "timestamp": now,
            "context": {"execution_id": execution, "step": "outline"}}},
        {"id": format!("{prefix}-6"), "event": "pipeline:completed", "data": {
            "execution_id": execution, "results": {"outline": "1. Events\n2. Projections"},
            "totals": {"tokens": 16, "cost_usd": 0.0004, "duration_ms": 150}}}
    ])
}

#[sqlx::test(migrations = "../migrations")]
async fn sse_sends_numbered_named_events_with_stream_headers(pool: PgPool) {
    let state = state(pool, BackboneSettings::default()).await;
    let addr = serve(state.clone()).await;
    let mut client = connect(addr, "", None).await;
    assert_eq!(client.headers["content-type"], "text/event-stream");
    assert_eq!(client.headers["cache-control"], "no-cache");
    assert_eq!(client.headers["x-accel-buffering"], "no");

    state.bus.publish(log("hello"));
    let frame = client.next().await;
    assert_eq!(frame.event, "log:entry");
    let event = frame.decode();
    assert_eq!(event.seq, frame.seq());
    assert!(event.seq > 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn heartbeats_arrive_unnumbered(pool: PgPool) {
    let mut settings = BackboneSettings::default();
    settings.live.heartbeat = Duration::from_millis(100);
    let addr = serve(state(pool, settings).await).await;
    let mut client = connect(addr, "", None).await;
    let frame = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut client.stream),
    )
    .await
    .expect("a heartbeat")
    .expect("open");
    assert_eq!(frame.event, "bus:heartbeat");
    assert_eq!(frame.id, "", "heartbeats never move Last-Event-ID");
    assert!(frame.data.contains("\"interval_ms\":100"));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_reconnecting_client_gets_exactly_what_it_missed(pool: PgPool) {
    let state = state(pool, BackboneSettings::default()).await;
    let addr = serve(state.clone()).await;

    let mut first = connect(addr, "", None).await;
    for i in 0..5 {
        state.bus.publish(log(&format!("before {i}")));
    }
    let seen = first.take(5).await;
    drop(first);
    let last = seen.last().expect("five").seq();

    for i in 0..5 {
        state.bus.publish(log(&format!("missed {i}")));
    }
    // Ephemeral events count too while they are in memory.
    state.bus.publish(EventBody::StepProgress(StepProgress {
        execution_id: Uuid::nil(),
        step: "s".into(),
        tokens_used: 3,
    }));
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut again = connect(addr, "", Some(last)).await;
    let replayed = again.take(6).await;
    assert_eq!(
        messages(&replayed[..5]),
        ["missed 0", "missed 1", "missed 2", "missed 3", "missed 4"]
    );
    assert_eq!(replayed[5].event, "step:progress");
    let seqs: Vec<i64> = replayed.iter().map(|f| f.seq()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > last,
        "{seqs:?}"
    );

    // Then live, without duplicates.
    state.bus.publish(log("live"));
    assert_eq!(messages(&again.take(1).await), ["live"]);
    again.assert_quiet(Duration::from_millis(300)).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn resuming_beyond_the_window_reads_postgres(pool: PgPool) {
    let mut settings = BackboneSettings::default();
    settings.bus.replay_window = 16;
    let state = state(pool, settings).await;
    let addr = serve(state.clone()).await;

    let mut first = connect(addr, "", None).await;
    state.bus.publish(log("seen"));
    let last = first.next().await.seq();
    drop(first);
    for i in 0..40 {
        state.bus.publish(log(&format!("missed {i}")));
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // flushed

    let mut again = connect(addr, "", Some(last)).await;
    let replayed = messages(&again.take(40).await);
    let expected: Vec<String> = (0..40).map(|i| format!("missed {i}")).collect();
    assert_eq!(replayed, expected);
    again.assert_quiet(Duration::from_millis(300)).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_client_too_far_behind_is_told_to_resync(pool: PgPool) {
    let mut settings = BackboneSettings::default();
    settings.bus.replay_window = 16;
    settings.live.replay_limit = 10;
    let state = state(pool, settings).await;
    let addr = serve(state.clone()).await;
    state.bus.publish(log("seen"));
    for i in 0..60 {
        state.bus.publish(log(&format!("missed {i}")));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first_seq = state.bus.stats().newest_in_window.expect("events") - 60;

    let mut client = connect(addr, "", Some(first_seq)).await;
    let frame = client.next().await;
    assert_eq!(frame.event, "bus:resync");
    assert_eq!(frame.id, "");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stalled_subscriber_loses_its_oldest_events_and_nobody_else_notices(pool: PgPool) {
    let mut settings = BackboneSettings::default();
    settings.bus.subscriber_buffer = 64;
    let state = state(pool, settings).await;
    let (mut stalled, _) = state.bus.subscribe(Filter::default(), None);
    let (mut active, _) = state.bus.subscribe(Filter::default(), None);

    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            while received.load(std::sync::atomic::Ordering::Acquire) < 500 {
                match active.next().await {
                    Next::Event(_) => received.fetch_add(1, std::sync::atomic::Ordering::AcqRel),
                    other => panic!("the active subscriber must not lag: {other:?}"),
                };
            }
        })
    };
    // In rounds smaller than the buffer, each read by the active subscriber before the next.
    for round in 0..25u64 {
        for i in 0..20 {
            state.bus.publish(log(&format!("e{}", round * 20 + i)));
        }
        while received.load(std::sync::atomic::Ordering::Acquire) < (round + 1) * 20 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    reader.await.expect("reader");

    // 500 published, 64 kept: exactly 436 lost, then the newest 64 in order.
    let lost = match stalled.next().await {
        Next::Lagged(lost) => lost,
        other => panic!("expected a lag, got {other:?}"),
    };
    assert_eq!(lost, 436);
    assert_eq!(stalled.dropped(), 436);
    assert_eq!(state.bus.stats().dropped_total, 436);
    for i in 436..500 {
        match stalled.next().await {
            Next::Event(event) => match &event.body {
                EventBody::LogEntry(e) => assert_eq!(e.message, format!("e{i}")),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stalled_sse_client_does_not_slow_another(pool: PgPool) {
    let mut settings = BackboneSettings::default();
    settings.bus.subscriber_buffer = 32;
    let state = state(pool, settings).await;
    let addr = serve(state.clone()).await;
    let _stalled = connect(addr, "", None).await; // never read: its socket buffers fill up
    let mut active = connect(addr, "", None).await;
    let big = "x".repeat(64 * 1024);
    let publisher = {
        let state = state.clone();
        tokio::spawn(async move {
            for i in 0..400 {
                state.bus.publish(log(&format!("{i} {big}")));
                // A pace a reader keeps up with (even a debug build): only the stalled one lags.
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
        })
    };
    let frames = active.take(400).await;
    publisher.await.expect("publisher");
    let numbers: Vec<usize> = messages(&frames)
        .iter()
        .map(|m| {
            m.split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("numbered")
        })
        .collect();
    assert_eq!(
        numbers,
        (0..400).collect::<Vec<_>>(),
        "the active client got every event in order"
    );
    assert!(state.bus.stats().subscribers >= 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn filters_follow_one_execution_or_one_step(pool: PgPool) {
    let state = state(pool, BackboneSettings::default()).await;
    let addr = serve(state.clone()).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let progress = |execution_id, step: &str| {
        EventBody::StepProgress(StepProgress {
            execution_id,
            step: step.into(),
            tokens_used: 1,
        })
    };
    let mut only_a = connect(addr, &format!("?execution={a}"), None).await;
    let mut only_a_draft = connect(addr, &format!("?execution={a}&step=draft"), None).await;
    state.bus.publish(progress(b, "draft"));
    state.bus.publish(progress(a, "outline"));
    state.bus.publish(log("global"));
    state.bus.publish(progress(a, "draft"));

    let first = only_a.take(2).await;
    assert!(first.iter().all(|f| f.data.contains(&a.to_string())));
    let draft = only_a_draft.next().await;
    assert!(draft.data.contains("\"step\":\"draft\"") && draft.data.contains(&a.to_string()));
    only_a_draft.assert_quiet(Duration::from_millis(200)).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_stream_parameters_get_a_400_saying_why(pool: PgPool) {
    let addr = serve(state(pool, BackboneSettings::default()).await).await;
    for (query, header, expected) in [
        ("?execution=nope", None, "execution must be an execution id"),
        ("?step=draft", None, "step needs execution"),
        ("", Some("abc"), "Last-Event-ID must be the sequence number"),
    ] {
        let mut request = reqwest::Client::new().get(format!("http://{addr}/api/events{query}"));
        if let Some(h) = header {
            request = request.header("Last-Event-ID", h);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert!(
            body["error"].as_str().expect("error").contains(expected),
            "{body}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn an_ingested_run_is_stored_when_the_request_returns(pool: PgPool) {
    let addr = serve(state(pool.clone(), BackboneSettings::default()).await).await;
    let execution = Uuid::new_v4();
    let (status, receipt) = ingest(addr, run_events(execution, "run").to_string()).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["accepted"], 7);

    // Read at once: the final state is already there.
    let (status, tokens, cost, results, source): (String, i64, f64, serde_json::Value, String) = sqlx::query_as(
        "SELECT status, total_tokens, cost_usd::float8, results, source FROM pipeline_executions WHERE id = $1",
    )
    .bind(execution)
    .fetch_one(&pool)
    .await
    .expect("execution row");
    assert_eq!(
        (status.as_str(), tokens, source.as_str()),
        ("completed", 16, "ingest")
    );
    assert!((cost - 0.0004).abs() < 1e-9);
    assert_eq!(results["outline"], "1. Events\n2. Projections");

    let step: (String, String, String, String, i32, i32, i32, i64) = sqlx::query_as(
        "SELECT status, prompt, template, response, prompt_tokens, completion_tokens, ttft_ms, duration_ms
         FROM step_executions WHERE execution_id = $1",
    )
    .bind(execution)
    .fetch_one(&pool)
    .await
    .expect("step row");
    assert_eq!(step.0, "completed");
    assert_eq!(step.1, "Write an outline about event sourcing.");
    assert_eq!(step.2, "Write an outline about {{ topic }}.");
    assert_eq!(step.3, "1. Events\n2. Projections");
    assert_eq!((step.4, step.5, step.6, step.7), (9, 7, 12, 140));

    let logs: i64 = sqlx::query_scalar("SELECT count(*) FROM log_entries WHERE execution_id = $1")
        .bind(execution)
        .fetch_one(&pool)
        .await
        .expect("logs");
    assert_eq!(logs, 1);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE execution_id = $1")
        .bind(execution)
        .fetch_one(&pool)
        .await
        .expect("events");
    assert_eq!(
        events, 7,
        "every event of the run, the log line included, is stored with its execution"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_retried_batch_is_stored_and_delivered_once(pool: PgPool) {
    let addr = serve(state(pool.clone(), BackboneSettings::default()).await).await;
    let mut client = connect(addr, "", None).await;
    let batch = json!([log_event("a", "one"), log_event("b", "two")]).to_string();
    let (status, first) = ingest(addr, batch.clone()).await;
    assert_eq!(
        (
            status,
            first["accepted"].as_u64(),
            first["duplicates"].as_u64()
        ),
        (200, Some(2), Some(0))
    );
    let (status, second) = ingest(addr, batch).await;
    assert_eq!(
        (
            status,
            second["accepted"].as_u64(),
            second["duplicates"].as_u64()
        ),
        (200, Some(0), Some(2))
    );

    assert_eq!(messages(&client.take(2).await), ["one", "two"]);
    client.assert_quiet(Duration::from_millis(300)).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM log_entries")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_ingest_input_gets_a_4xx_naming_the_problem_and_stores_nothing(pool: PgPool) {
    let addr = serve(state(pool.clone(), BackboneSettings::default()).await).await;
    let good = log_event("good-1", "fine");
    let unknown_execution = Uuid::new_v4();
    // (what, body, status, message, index of the bad event)
    type Case = (&'static str, Vec<u8>, u16, &'static str, Option<u64>);
    let cases: Vec<Case> = vec![
        ("malformed JSON", b"[{\"event\": ".to_vec(), 400, "malformed JSON", None),
        ("not an array", br#"{"event":"log:entry"}"#.to_vec(), 400, "must be a JSON array", None),
        ("empty batch", b"[]".to_vec(), 400, "empty", None),
        ("invalid UTF-8", b"[\"\xff\xfe\"]".to_vec(), 400, "not valid UTF-8", None),
        (
            "unknown event name",
            json!([good, {"event": "pipeline:exploded", "data": {}}]).to_string().into_bytes(),
            422,
            "unknown variant `pipeline:exploded`",
            Some(1),
        ),
        (
            "missing field",
            json!([good, {"event": "log:entry", "data": {"level": "info", "timestamp": "2026-11-25T00:00:00Z"}}]).to_string().into_bytes(),
            422,
            "missing field `message`",
            Some(1),
        ),
        (
            "wrongly typed field",
            json!([{"event": "log:entry", "data": {"level": "info", "message": 42, "timestamp": "2026-11-25T00:00:00Z"}}, good]).to_string().into_bytes(),
            422,
            "invalid type: integer `42`, expected a string",
            Some(0),
        ),
        (
            "one id twice in a batch",
            json!([good, good.clone()]).to_string().into_bytes(),
            422,
            "appears twice",
            Some(1),
        ),
        (
            "bus event",
            json!([{"event": "bus:heartbeat", "data": {"interval_ms": 5}}]).to_string().into_bytes(),
            422,
            "cannot be ingested",
            Some(0),
        ),
        (
            "unknown execution",
            json!([good, {"event": "step:progress", "data": {"execution_id": unknown_execution, "step": "s", "tokens_used": 1}}]).to_string().into_bytes(),
            422,
            "is unknown; send its pipeline:started first",
            Some(1),
        ),
        (
            "oversized body",
            format!("[{}]", "\"x\",".repeat(3 << 20)).into_bytes(),
            413,
            "larger than 8 MiB",
            None,
        ),
    ];
    for (what, body, status, message, index) in cases {
        let (got, json) = ingest(addr, body).await;
        assert_eq!(got, status, "{what}: {json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(message),
            "{what}: {error:?} should contain {message:?}"
        );
        assert_eq!(json["index"].as_u64(), index, "{what}: {json}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 0, "no valid event of a rejected batch was stored");
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_payload_fields_are_rejected_with_their_path(pool: PgPool) {
    let addr = serve(state(pool, BackboneSettings::default()).await).await;
    let body = json!([{"event": "log:entry", "data": {"level": "info", "message": "m",
        "timestamp": "2026-11-25T00:00:00Z", "colour": "red"}}]);
    let (status, json) = ingest(addr, body.to_string()).await;
    assert_eq!(status, 422, "{json}");
    assert!(
        json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown field `colour`"),
        "{json}"
    );
    assert_eq!(json["index"], 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn two_instances_on_one_database_see_each_others_events(pool: PgPool) {
    let a = serve(state(pool.clone(), BackboneSettings::default()).await).await;
    let b_state = state(pool, BackboneSettings::default()).await;
    let b = serve(b_state.clone()).await;
    tokio::time::sleep(Duration::from_millis(200)).await; // both listening

    let mut on_b = connect(b, "", None).await;
    let (status, receipt) = ingest(a, json!([log_event("x-1", "from a")]).to_string()).await;
    assert_eq!(status, 200, "{receipt}");
    let frame = on_b.next().await;
    assert_eq!(messages(std::slice::from_ref(&frame)), ["from a"]);
    assert_eq!(
        frame.seq(),
        receipt["seqs"][0].as_i64().expect("seq"),
        "same number everywhere"
    );
    assert_eq!(b_state.bus.stats().relayed, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_follow_the_stream_and_are_snapshotted(pool: PgPool) {
    let settings = BackboneSettings {
        metrics_snapshot_every: Duration::from_millis(300),
        ..Default::default()
    };
    let addr = serve(state(pool.clone(), settings).await).await;
    let mut client = connect(addr, "", None).await;
    let execution = Uuid::new_v4();
    let (status, _) = ingest(addr, run_events(execution, "m").to_string()).await;
    assert_eq!(status, 200);

    let metrics = loop {
        let frame = tokio::time::timeout(
            Duration::from_secs(5),
            futures::StreamExt::next(&mut client.stream),
        )
        .await
        .expect("metrics within 5 s")
        .expect("open");
        if frame.event == "metrics:updated" {
            match frame.decode().body {
                EventBody::MetricsUpdated(m) if m.tokens_total == 16 => break m,
                _ => continue,
            }
        }
    };
    assert_eq!(metrics.running, 0);
    assert_eq!(metrics.latency_p50_ms, Some(140.0));
    assert_eq!(metrics.error_rate, 0.0);

    tokio::time::sleep(Duration::from_millis(700)).await;
    let tokens: Vec<i64> =
        sqlx::query_scalar("SELECT tokens_total FROM metrics_snapshots ORDER BY taken_at")
            .fetch_all(&pool)
            .await
            .expect("snapshots");
    assert!(tokens.last() == Some(&16), "{tokens:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_snapshot_is_consistent_with_its_sequence_number(pool: PgPool) {
    use app::backend::Backend;
    let state = state(pool, BackboneSettings::default()).await;
    let addr = serve(state.clone()).await;
    let running = Uuid::new_v4();
    let now = chrono::Utc::now();
    let body = json!([
        {"event": "pipeline:started", "data": {"execution_id": running, "pipeline": "p", "started_at": now}},
        {"event": "step:started", "data": {"execution_id": running, "step": "draft", "provider": "simulated", "model": "sim"}}
    ]);
    let (status, receipt) = ingest(addr, body.to_string()).await;
    assert_eq!(status, 200);
    ingest(addr, run_events(Uuid::new_v4(), "done").to_string()).await;

    let snapshot = state.snapshot().await.expect("snapshot");
    assert_eq!(snapshot.active.len(), 1);
    assert_eq!(snapshot.active[0].id, running);
    assert_eq!(snapshot.active[0].current_step.as_deref(), Some("draft"));
    assert_eq!(snapshot.recent.len(), 1);
    assert_eq!(snapshot.recent[0].status, app::models::RunStatus::Completed);
    assert_eq!(snapshot.totals.tokens, 16);
    assert_eq!(snapshot.logs.len(), 1);
    let seq = snapshot.seq.expect("seq");
    assert!(seq >= receipt["seqs"][1].as_i64().expect("seq"));

    // Continuing from the snapshot's seq: nothing old, then the next event.
    let mut client = connect(addr, "", Some(seq)).await;
    client.assert_quiet(Duration::from_millis(200)).await;
    state.bus.publish(log("after"));
    assert_eq!(messages(&client.take(1).await), ["after"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn closing_the_bus_writes_everything_published(pool: PgPool) {
    let settings = BackboneSettings {
        flush_every: Duration::from_secs(3600), // only the final flush can write these
        ..Default::default()
    };
    let state = state(pool.clone(), settings).await;
    for i in 0..10 {
        state.bus.publish(log(&format!("{i}")));
    }
    state.shut_down().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM log_entries")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 10);
    assert!(matches!(
        state.bus.publish_durable(log("late")).await,
        Err(server::bus::PublishError::Closed)
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn replay_plans_use_memory_when_they_can(pool: PgPool) {
    let state = state(pool, BackboneSettings::default()).await;
    let first = state.bus.publish_durable(log("a")).await.expect("seq");
    state.bus.publish_durable(log("b")).await.expect("seq");
    match state.bus.subscribe(Filter::default(), Some(first)).1 {
        Replay::Window(events) => assert_eq!(events.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn after_a_restart_a_client_resumes_from_postgres_then_live_without_duplicates(pool: PgPool) {
    let before = state(pool.clone(), BackboneSettings::default()).await;
    let seen = before.bus.publish_durable(log("seen")).await.expect("seq");
    for i in 0..5 {
        before.bus.publish(log(&format!("missed {i}")));
    }
    before.shut_down().await;

    // A new instance: its memory window is empty, everything comes from Postgres.
    let after = state(pool, BackboneSettings::default()).await;
    let addr = serve(after.clone()).await;
    let mut client = connect(addr, "", Some(seen)).await;
    let replayed = messages(&client.take(5).await);
    assert_eq!(
        replayed,
        ["missed 0", "missed 1", "missed 2", "missed 3", "missed 4"]
    );
    after.bus.publish(log("live"));
    assert_eq!(messages(&client.take(1).await), ["live"]);
    client.assert_quiet(Duration::from_millis(300)).await;
}

/// A log line of one step of one execution (persisted, unlike step progress).
fn step_log(execution: Uuid, step: &str, message: &str) -> EventBody {
    EventBody::LogEntry(LogEntry {
        level: LogLevel::Info,
        message: message.into(),
        timestamp: chrono::Utc::now(),
        context: LogContext {
            execution_id: Some(execution),
            step: Some(step.into()),
            ..Default::default()
        },
    })
}

#[sqlx::test(migrations = "../migrations")]
async fn a_filtered_resume_from_the_store_spans_pages_and_keeps_bus_signals(pool: PgPool) {
    let mut settings = BackboneSettings::default();
    settings.bus.replay_window = 16;
    settings.live.replay_page = 3;
    let state = state(pool.clone(), settings).await;
    let addr = serve(state.clone()).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    // Log lines of a step are stored only once the step is (the store refuses the others).
    for (execution, step) in [(a, "draft"), (a, "outline"), (b, "draft")] {
        for body in [
            json!({"event": "pipeline:started", "data": {"execution_id": execution,
                "pipeline": "brief", "started_at": chrono::Utc::now()}}),
            json!({"event": "step:started", "data": {"execution_id": execution, "step": step,
                "provider": "simulated", "model": "sim-small"}}),
        ] {
            let body = serde_json::from_value(body).expect("event");
            state.bus.publish_durable(body).await.expect("stored");
        }
    }
    let seen = state.bus.publish_durable(log("seen")).await.expect("seq");
    let mut resync_seq = 0;
    for i in 0..20 {
        state
            .bus
            .publish(step_log(a, "draft", &format!("a draft {i}")));
        state
            .bus
            .publish(step_log(a, "outline", &format!("a outline {i}")));
        state
            .bus
            .publish(step_log(b, "draft", &format!("b draft {i}")));
        state.bus.publish(log(&format!("global {i}")));
        if i == 5 {
            // Everything so far numbered, then a refused event's place in the store as
            // `db::projection::write_refusal` records it: a bus signal, which every filter lets
            // through.
            state
                .bus
                .publish_durable(log("numbered"))
                .await
                .expect("seq");
            resync_seq = sqlx::query_scalar(
                r#"INSERT INTO events (seq, name, at, origin, payload)
                   VALUES (nextval('event_seq'), 'bus:resync', now(), $1,
                           '{"event": "bus:resync", "data": {"reason": "event 0 could not be stored; reload"}}')
                   RETURNING seq"#,
            )
            .bind(Uuid::new_v4())
            .fetch_one(&pool)
            .await
            .expect("stored signal");
        }
    }
    state
        .bus
        .publish_durable(log("flushed"))
        .await
        .expect("seq");
    assert!(
        state.bus.stats().oldest_in_window.expect("window") > resync_seq + 3 * 3,
        "several pages come from the store"
    );

    let mut client = connect(addr, &format!("?execution={a}&step=draft"), Some(seen)).await;
    let frames = client.take(21).await;
    let seqs: Vec<i64> = frames.iter().map(|f| f.seq()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    let got: Vec<String> = frames
        .iter()
        .map(|f| match f.decode().body {
            EventBody::LogEntry(e) => e.message,
            EventBody::BusResync(r) => format!("resync {} {}", f.seq(), r.reason),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let mut expected: Vec<String> = (0..20).map(|i| format!("a draft {i}")).collect();
    expected.insert(
        6,
        format!("resync {resync_seq} event 0 could not be stored; reload"),
    );
    assert_eq!(got, expected);
    client.assert_quiet(Duration::from_millis(300)).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_resume_past_the_replay_limit_gets_only_a_resync(pool: PgPool) {
    let mut settings = BackboneSettings::default();
    settings.bus.replay_window = 16;
    settings.live.replay_limit = 10;
    settings.live.replay_page = 4;
    let state = state(pool.clone(), settings).await;
    let addr = serve(state.clone()).await;
    for i in 0..40 {
        state.bus.publish(log(&format!("missed {i}")));
    }
    state
        .bus
        .publish_durable(log("flushed"))
        .await
        .expect("seq");
    // Resume points with exactly the limit, and one more, stored before the window.
    let window = state.bus.stats().oldest_in_window.expect("window");
    let stored: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, payload->'data'->>'message' FROM events WHERE seq < $1 ORDER BY seq DESC LIMIT 12",
    )
    .bind(window)
    .fetch_all(&pool)
    .await
    .expect("stored");
    let (at_the_limit, past_the_limit) = (stored[10].0, stored[11].0);

    let mut client = connect(addr, "", Some(at_the_limit)).await;
    let expected: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'data'->>'message' FROM events WHERE seq > $1 ORDER BY seq",
    )
    .bind(at_the_limit)
    .fetch_all(&pool)
    .await
    .expect("missed");
    assert_eq!(expected.first(), Some(&stored[9].1));
    assert_eq!(messages(&client.take(expected.len()).await), expected);

    // Told to resync, and nothing else, not even what memory holds; live events follow.
    let mut client = connect(addr, "", Some(past_the_limit)).await;
    let frame = client.next().await;
    assert_eq!(
        (frame.event.as_str(), frame.id.as_str()),
        ("bus:resync", "")
    );
    client.assert_quiet(Duration::from_millis(300)).await;
    state.bus.publish(log("live"));
    assert_eq!(messages(&client.take(1).await), ["live"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_replay_from_the_store_carries_what_the_live_stream_carried(pool: PgPool) {
    let mut settings = BackboneSettings::default();
    settings.bus.replay_window = 16;
    let state = state(pool.clone(), settings).await;
    let addr = serve(state.clone()).await;
    let mut live = connect(addr, "", None).await;
    let execution = Uuid::new_v4();
    let (status, _) = ingest(addr, run_events(execution, "wire").to_string()).await;
    assert_eq!(status, 200);
    let first = live.take(7).await;
    for i in 0..20 {
        state.bus.publish(log(&format!("after {i}")));
    }
    state
        .bus
        .publish_durable(log("flushed"))
        .await
        .expect("seq");
    assert!(state.bus.stats().oldest_in_window.expect("window") > first[6].seq());

    let mut again = connect(addr, "", Some(first[0].seq() - 1)).await;
    let replayed = again.take(7).await;
    // The run's events as the store holds them (the log's copy, with the texts its step rows
    // keep put back).
    let rows = server::db::events::of_execution(&pool, execution, 100)
        .await
        .expect("rows");
    for (live, stored) in first.iter().zip(&replayed) {
        // What a resume sent before it streamed text: the row decoded and encoded again.
        let row = rows.iter().find(|e| e.seq == stored.seq()).expect("row");
        let decoded = Delivered::new(row.clone());
        // The envelope byte for byte; `data` as the same JSON value (jsonb orders object keys
        // its own way).
        let envelope = |data: &str| data[..data.find(r#","data":"#).expect("data")].to_string();
        assert_eq!(envelope(decoded.json()), envelope(&stored.data));
        let value = |data: &str| serde_json::from_str::<serde_json::Value>(data).expect("JSON");
        assert_eq!(value(decoded.json()), value(&stored.data));
        // And the event the live stream carried, at the store's precision (microseconds).
        let (live, stored) = (live.decode(), stored.decode());
        assert_eq!((live.seq, &live.body), (stored.seq, &stored.body));
        assert_eq!(live.at.timestamp_micros(), stored.at.timestamp_micros());
    }
}
