//! One event the store cannot hold never costs anyone else their data: refused at the edge with
//! its index and path, or — when it gets past the edge — isolated in the flush, with everything
//! around it stored and resuming clients told to resync.

use crate::common;

use std::time::Duration;

use crate::common::{connect, ingest, log, serve, state};
use serde_json::json;
use server::state::BackboneSettings;
use sqlx::PgPool;
use uuid::Uuid;

fn started(execution: Uuid) -> serde_json::Value {
    json!({"event": "pipeline:started", "data": {
        "execution_id": execution, "pipeline": "neighbour", "inputs": {"topic": "raft"},
        "started_at": chrono::Utc::now()}})
}

async fn stored_events(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrations = "../migrations")]
async fn a_bad_event_from_one_client_does_not_cost_another_client_its_run(pool: PgPool) {
    let state = state(pool.clone(), BackboneSettings::default()).await;
    let addr = serve(state).await;
    let neighbour = Uuid::new_v4();

    // Both in the same 100 ms window, as in the reported failure.
    let bad = json!([{"event": "log:entry", "data": {
        "level": "info", "message": "before\u{0}after", "timestamp": chrono::Utc::now()}}]);
    let good = json!([started(neighbour)]);
    let ((bad_status, bad_answer), (good_status, good_answer)) = tokio::join!(
        ingest(addr, bad.to_string()),
        ingest(addr, good.to_string())
    );

    assert_eq!(bad_status, 422, "{bad_answer}");
    assert_eq!(bad_answer["index"], 0);
    assert_eq!(bad_answer["path"], "data.message");
    assert!(
        bad_answer["error"].as_str().unwrap_or("").contains("NUL"),
        "{bad_answer}"
    );
    assert_eq!(good_status, 200, "{good_answer}");

    let detail: serde_json::Value =
        reqwest::get(format!("http://{addr}/api/executions/{neighbour}"))
            .await
            .expect("detail")
            .json()
            .await
            .expect("json");
    assert_eq!(detail["pipeline"], "neighbour", "{detail}");
    assert_eq!(detail["inputs"]["topic"], "raft");
    let bad_stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM log_entries WHERE message LIKE 'before%'")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(bad_stored, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn each_kind_of_unstorable_event_is_refused_with_its_index_and_path(pool: PgPool) {
    let state = state(pool.clone(), BackboneSettings::default()).await;
    let addr = serve(state).await;
    let run = Uuid::new_v4();
    let (status, answer) = ingest(
        addr,
        json!([started(run), {"event": "step:started", "data": {
            "execution_id": run, "step": "outline", "provider": "simulated", "model": "sim-small"}}])
        .to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let before = stored_events(&pool).await;
    let unknown = Uuid::new_v4();

    // (event, path, words the message must contain)
    let cases = [
        (
            json!({"event": "pipeline:started", "data": {"execution_id": Uuid::new_v4(),
                "pipeline": "p", "inputs": {"topic": "a\u{0}b"}, "started_at": chrono::Utc::now()}}),
            "data.inputs.topic",
            "NUL",
        ),
        (
            json!({"event": "pipeline:started", "data": {"execution_id": Uuid::new_v4(),
                "pipeline": "p", "inputs": {"k\u{0}": 1}, "started_at": chrono::Utc::now()}}),
            "data.inputs.k\u{0}",
            "key",
        ),
        (
            json!({"event": "prompt:sent", "data": {"execution_id": run, "step": "outline",
                "prompt": "x", "token_count": 2_147_483_648u64}}),
            "data.token_count",
            "too large",
        ),
        (
            json!({"event": "step:completed", "data": {"execution_id": run, "step": "outline",
                "duration_ms": 1, "tokens": 1, "cost_usd": 1e9, "status": "completed"}}),
            "data.cost_usd",
            "out of range",
        ),
        (
            json!({"event": "step:started", "data": {"execution_id": run, "step": "draft",
                "provider": "simulated", "model": "sim-small", "attempt": 0}}),
            "data.attempt",
            "from 1",
        ),
        (
            json!({"event": "step:started", "data": {"execution_id": run, "step": "outline",
                "provider": "simulated", "model": "sim-small", "attempt": 2, "replay_of": 3}}),
            "data.replay_of",
            "earlier attempt",
        ),
        (
            json!({"event": "response:received", "data": {"execution_id": run, "step": "never",
                "response": "x", "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}}),
            "data.step",
            "never started",
        ),
    ];
    for (event, path, words) in cases {
        // A good event first, so the bad one's index is 1 and nothing of the batch is stored.
        let batch = json!([{"event": "log:entry", "data": {"level": "info", "message": "fine",
            "timestamp": chrono::Utc::now()}}, event]);
        let (status, answer) = ingest(addr, batch.to_string()).await;
        assert_eq!(status, 422, "{path}: {answer}");
        assert_eq!(answer["index"], 1, "{answer}");
        assert_eq!(answer["path"], path, "{answer}");
        let message = answer["error"].as_str().unwrap_or("");
        assert!(message.contains(words), "{path}: {message}");
    }
    // An execution nobody started (this one existed before; it keeps working).
    let (status, answer) = ingest(
        addr,
        json!([{"event": "pipeline:paused", "data": {"execution_id": unknown,
            "at": chrono::Utc::now()}}])
        .to_string(),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap_or("").contains("unknown"));

    assert_eq!(
        stored_events(&pool).await,
        before,
        "nothing refused is stored"
    );
}

/// Past the edge (an event the checks did not foresee), the flush isolates it: the other 999
/// events of the batch are stored, the refusal is logged, and its seq is a `bus:resync` for
/// anyone resuming across it from the store.
#[sqlx::test(migrations = "../migrations")]
async fn a_flush_with_one_refused_event_stores_the_other_999(pool: PgPool) {
    let mut settings = BackboneSettings {
        // Only the final flush writes: all 1,000 events are one batch.
        flush_every: Duration::from_secs(3600),
        ..Default::default()
    };
    settings.bus.replay_window = 16;
    let state = state(pool.clone(), settings).await;
    let addr = serve(state.clone()).await;

    let mut watcher = connect(addr, "", None).await;
    state.bus.publish(log("first"));
    let before = watcher.next().await.seq();

    // bus.publish goes straight to the sequencer: no edge check, as for an engine bug.
    for i in 0..1000 {
        if i == 500 {
            state.bus.publish(log("bad\u{0}byte"));
        } else {
            state.bus.publish(log(&format!("line {i}")));
        }
    }
    let frames = watcher.take(1000).await;
    let bad_seq = frames[500].seq();
    let last = frames[999].seq();
    state.shut_down().await;

    let messages: Vec<String> =
        sqlx::query_scalar("SELECT message FROM log_entries WHERE level = 'info' ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("read");
    let expected: Vec<String> = std::iter::once("first".to_owned())
        .chain((0..1000).filter(|&i| i != 500).map(|i| format!("line {i}")))
        .collect();
    assert_eq!(messages, expected);

    let refusals: Vec<String> =
        sqlx::query_scalar("SELECT message FROM log_entries WHERE level = 'error'")
            .fetch_all(&pool)
            .await
            .expect("read");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(
        refusals[0].contains(&format!("event {bad_seq} (log:entry)")),
        "{refusals:?}"
    );
    let names: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, name FROM events WHERE seq BETWEEN $1 AND $2 ORDER BY seq")
            .bind(bad_seq - 1)
            .bind(bad_seq + 1)
            .fetch_all(&pool)
            .await
            .expect("read");
    assert_eq!(
        names,
        [
            (bad_seq - 1, "log:entry".to_owned()),
            (bad_seq, "bus:resync".to_owned()),
            (bad_seq + 1, "log:entry".to_owned())
        ]
    );

    // A new instance on the same store: resuming from before the refused event reads the store
    // and is told to resync at its seq, after exactly the events before it.
    let again = common::state(pool.clone(), BackboneSettings::default()).await;
    let addr = serve(again).await;
    let mut resumed = connect(addr, "", Some(before)).await;
    let replayed = resumed.take(501).await;
    assert!(replayed[..500]
        .iter()
        .all(|f| f.event == "log:entry" && f.seq() < bad_seq));
    assert_eq!(replayed[500].event, "bus:resync");
    assert_eq!(replayed[500].seq(), bad_seq);
    assert!(last > bad_seq);
}
