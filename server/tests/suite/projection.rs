//! The writer folds a batch's events per row and writes each row once; the event log keeps one
//! copy of a step's prompt and response (in the step's row). Whatever the batching, the rows,
//! the running totals and every event read back from the log are the same as when each event
//! is written on its own, and a refused event in a folded batch costs only itself.

use crate::common;

use std::time::Duration;

use app::models::{
    events::{
        LogContext, LogEntry, LogLevel, PipelineCompleted, PipelineError, PipelineStarted,
        PromptSent, ResponseReceived, RunTransition, StepCompleted, StepStarted, StepStatus,
        Totals, Usage,
    },
    Event, EventBody,
};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use server::{
    db::{
        events::{of_execution, page_after, read_range, Follow},
        projection::{write_batch, Attempts, Origin, StoredEvent},
    },
    state::BackboneSettings,
};
use sqlx::PgPool;
use uuid::Uuid;

const A: Uuid = Uuid::from_u128(0xa);
const B: Uuid = Uuid::from_u128(0xb);
const C: Uuid = Uuid::from_u128(0xc);
const INSTANCE: Uuid = Uuid::from_u128(0x1257);

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0)
        .single()
        .expect("a valid time")
}

fn started(id: Uuid) -> EventBody {
    EventBody::PipelineStarted(PipelineStarted {
        execution_id: id,
        pipeline: "fold".into(),
        config: json!({"steps": ["outline"]}),
        inputs: json!({"topic": "raft"}),
        started_at: at(0),
        version: Some(3),
        batch_id: None,
    })
}

fn step(id: Uuid, step: &str, attempt: u32, replay_of: Option<u32>) -> EventBody {
    EventBody::StepStarted(StepStarted {
        execution_id: id,
        step: step.into(),
        provider: "simulated".into(),
        model: "sim-small".into(),
        attempt,
        token_budget: Some(900),
        replay_of,
        config: Value::Null,
    })
}

fn prompt(id: Uuid, step: &str, text: &str) -> EventBody {
    EventBody::PromptSent(PromptSent {
        execution_id: id,
        step: step.into(),
        prompt: text.into(),
        system: Some("Be brief.".into()),
        template: format!("template of {text}"),
        variables: json!({"topic": text}),
        token_count: 12,
    })
}

fn response(id: Uuid, step: &str, text: &str) -> EventBody {
    EventBody::ResponseReceived(ResponseReceived {
        execution_id: id,
        step: step.into(),
        response: text.into(),
        usage: Usage {
            prompt_tokens: 12,
            completion_tokens: 30,
            total_tokens: 42,
        },
        ttft_ms: Some(150),
    })
}

fn step_done(id: Uuid, step: &str, status: StepStatus) -> EventBody {
    EventBody::StepCompleted(StepCompleted {
        execution_id: id,
        step: step.into(),
        duration_ms: 1200,
        tokens: 42,
        cost_usd: 0.0042,
        status,
        error: (status == StepStatus::Failed).then(|| "rate limited".into()),
    })
}

fn transition(id: Uuid, reason: Option<&str>) -> RunTransition {
    RunTransition {
        execution_id: id,
        at: at(100),
        reason: reason.map(Into::into),
    }
}

/// Three runs interleaved: retries, a replay, a prompt and a response sent twice for one
/// attempt, a step started twice, pause/resume, cancel, error, a log line.
fn history() -> Vec<EventBody> {
    vec![
        started(A),
        step(A, "outline", 1, None),
        started(B),
        prompt(A, "outline", "outline prompt 1"),
        step(B, "outline", 1, None),
        response(A, "outline", "outline response 1"),
        step_done(A, "outline", StepStatus::Failed),
        step(A, "outline", 2, None),
        EventBody::PipelinePaused(transition(B, None)),
        prompt(A, "outline", "outline prompt 2"),
        prompt(B, "outline", "b prompt"),
        response(A, "outline", "outline response 2"),
        step_done(A, "outline", StepStatus::Completed),
        EventBody::PipelineResumed(transition(B, None)),
        step(A, "draft", 1, None),
        prompt(A, "draft", "draft prompt first"),
        started(C),
        prompt(A, "draft", "draft prompt second"),
        step(C, "s", 1, None),
        response(C, "s", "c response first"),
        response(A, "draft", "draft response"),
        step(C, "s", 1, None),
        response(C, "s", "c response second"),
        step_done(A, "draft", StepStatus::Completed),
        EventBody::LogEntry(LogEntry {
            level: LogLevel::Warn,
            message: "draft was long".into(),
            timestamp: at(50),
            context: LogContext {
                execution_id: Some(A),
                step: Some("draft".into()),
                ..Default::default()
            },
        }),
        EventBody::PipelineCancelled(transition(B, Some("stopped by a user"))),
        step_done(C, "s", StepStatus::Completed),
        step(C, "s", 2, Some(1)),
        response(C, "s", "c replay response"),
        EventBody::PipelineCompleted(PipelineCompleted {
            execution_id: A,
            results: json!({"draft": "done"}),
            totals: Totals {
                tokens: 126,
                cost_usd: 0.0126,
                duration_ms: 5000,
            },
        }),
        EventBody::PipelineError(PipelineError {
            execution_id: C,
            error: "budget passed".into(),
            step: Some("s".into()),
        }),
    ]
}

fn numbered(bodies: Vec<EventBody>) -> Vec<Event> {
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| Event {
            seq: i as i64 + 1,
            at: at(i as i64),
            body,
        })
        .collect()
}

/// Writes `events` in transactions of `chunk` events, as the writer would.
async fn write_in_chunks(pool: &PgPool, events: &[Event], chunk: usize) {
    let mut attempts = Attempts::default();
    let wires: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect();
    for (part, wires) in events.chunks(chunk).zip(wires.chunks(chunk)) {
        let stored: Vec<StoredEvent<'_>> = part
            .iter()
            .zip(wires)
            .map(|(e, wire)| StoredEvent {
                seq: e.seq,
                at: e.at,
                body: &e.body,
                origin: Origin::Ingest,
                client_id: None,
                wire: Some(wire),
            })
            .collect();
        write_batch(pool, INSTANCE, &stored, &mut attempts)
            .await
            .expect("write");
    }
}

/// Everything a batch writes, as JSON, without the columns that differ by construction (row
/// ids, `updated_at`); `replay_of` as the attempt it names.
async fn store(pool: &PgPool) -> Value {
    sqlx::query_scalar(
        "SELECT jsonb_build_object(
            'executions', (SELECT jsonb_agg(to_jsonb(x) - 'updated_at' ORDER BY x.id)
                           FROM pipeline_executions x),
            'steps', (SELECT jsonb_agg(to_jsonb(s) - 'id' - 'replay_of'
                                       || jsonb_build_object('replay_of', o.attempt)
                                       ORDER BY s.execution_id, s.step_name, s.attempt)
                      FROM step_executions s LEFT JOIN step_executions o ON o.id = s.replay_of),
            'logs', (SELECT jsonb_agg(to_jsonb(l) - 'id' ORDER BY l.logged_at) FROM log_entries l),
            'totals', (SELECT to_jsonb(t) FROM store_totals t))",
    )
    .fetch_one(pool)
    .await
    .expect("read the store")
}

/// Events whose log entry still holds a prompt or a response text.
async fn texts_in_the_log(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE payload->'data' ? 'prompt' OR payload->'data' ? 'response'",
    )
    .fetch_one(pool)
    .await
    .expect("count")
}

/// Every way of reading the log gives back the events exactly as published.
async fn assert_log_reads_back(pool: &PgPool, events: &[Event], how: &str) {
    for id in [A, B, C] {
        let expected: Vec<&Event> = events
            .iter()
            .filter(|e| e.body.scope().execution_id == Some(id))
            .collect();
        let read = of_execution(pool, id, 1000).await.expect("read");
        assert_eq!(read.iter().collect::<Vec<_>>(), expected, "{how}: run {id}");
    }
    let last = events.len() as i64;
    let relayed = read_range(pool, INSTANCE, 1, last).await.expect("range");
    assert_eq!(relayed, events, "{how}: relay");
    let page = page_after(pool, 0, last, Follow::default(), 1000)
        .await
        .expect("page");
    assert_eq!(page.len(), events.len(), "{how}");
    for (stored, event) in page.iter().zip(events) {
        let wire = serde_json::to_value(&event.body).expect("json");
        let data: Value = serde_json::from_str(&stored.data).expect("data");
        assert_eq!(
            (stored.seq, stored.name.as_str(), &data),
            (event.seq, event.name(), &wire["data"]),
            "{how}"
        );
    }
}

async fn empty_the_store(pool: &PgPool) {
    sqlx::raw_sql(
        "TRUNCATE events, log_entries, step_search, step_search_queue, step_executions, pipeline_executions;
         UPDATE store_totals SET executions = 0, steps = 0, log_entries = 0, tokens = 0, cost_usd = 0",
    )
    .execute(pool)
    .await
    .expect("empty");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_folded_batch_writes_the_same_rows_and_log_as_one_event_at_a_time(pool: PgPool) {
    let events = numbered(history());

    write_in_chunks(&pool, &events, 1).await;
    let one_at_a_time = store(&pool).await;
    assert_log_reads_back(&pool, &events, "one at a time").await;
    // Only the texts a later event of the same attempt replaced stay in the log: the first
    // draft prompt and the first response of C's step.
    assert_eq!(texts_in_the_log(&pool).await, 2);

    for chunk in [events.len(), 3, 7] {
        empty_the_store(&pool).await;
        write_in_chunks(&pool, &events, chunk).await;
        assert_eq!(
            store(&pool).await,
            one_at_a_time,
            "batches of {chunk} events"
        );
        assert_log_reads_back(&pool, &events, &format!("batches of {chunk}")).await;
        assert_eq!(texts_in_the_log(&pool).await, 2, "batches of {chunk}");
    }

    // The rows are the runs' final state (checked once; the comparisons cover the rest).
    // Steps in order: A draft, A outline 1, A outline 2, B outline, C s 1, C s 2.
    let steps = &one_at_a_time["steps"];
    let outline_2 = &steps[2];
    assert_eq!(
        (
            &outline_2["attempt"],
            &outline_2["status"],
            &outline_2["prompt"],
            &outline_2["response"]
        ),
        (
            &json!(2),
            &json!("completed"),
            &json!("outline prompt 2"),
            &json!("outline response 2")
        )
    );
    assert_eq!(steps[1]["status"], "failed");
    assert_eq!(steps[0]["prompt"], "draft prompt second");
    assert_eq!(steps[3]["prompt"], "b prompt");
    assert_eq!(steps[4]["response"], "c response second");
    // A replay of an attempt started in the same batch names it too.
    assert_eq!(steps[5]["replay_of"], 1);
    let totals = &one_at_a_time["totals"];
    assert_eq!(
        (
            &totals["executions"],
            &totals["steps"],
            &totals["log_entries"]
        ),
        (&json!(3), &json!(6), &json!(1))
    );
    // Every step but B's (cancelled before its response) used 42 tokens.
    assert_eq!(totals["tokens"], 42 * 5);
    let executions = &one_at_a_time["executions"];
    assert_eq!(
        (
            &executions[0]["status"],
            &executions[1]["status"],
            &executions[2]["status"]
        ),
        (&json!("completed"), &json!("cancelled"), &json!("failed"))
    );
}

/// A step started before this writer knew it (a restart): its later events update its latest
/// attempt and keep their texts in the log, since the writer cannot name the row.
#[sqlx::test(migrations = "../migrations")]
async fn events_of_a_step_started_before_a_restart_keep_their_texts(pool: PgPool) {
    let events = numbered(vec![
        started(A),
        step(A, "outline", 1, None),
        step(A, "outline", 2, None),
        prompt(A, "outline", "after the restart"),
        response(A, "outline", "answer after the restart"),
    ]);
    write_in_chunks(&pool, &events[..3], 3).await;
    // A fresh `Attempts`: the writer after a restart.
    write_in_chunks(&pool, &events[3..], 2).await;
    let rows: Vec<(i32, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT attempt, prompt, response FROM step_executions ORDER BY attempt")
            .fetch_all(&pool)
            .await
            .expect("rows");
    assert_eq!(
        rows,
        [
            (1, None, None),
            (
                2,
                Some("after the restart".into()),
                Some("answer after the restart".into())
            )
        ]
    );
    assert_eq!(texts_in_the_log(&pool).await, 2);
    let read = of_execution(&pool, A, 100).await.expect("read");
    assert_eq!(read, events);
}

/// Through the bus writer, with no edge check (as for an engine bug): a prompt the database
/// refuses, folded into the same batch and the same step row as its neighbours, is the only
/// event not stored; the step's other events, and another run in the same batch, are.
#[sqlx::test(migrations = "../migrations")]
async fn a_refused_event_in_a_folded_batch_costs_only_itself(pool: PgPool) {
    let settings = BackboneSettings {
        // Only the final events flush: each run's events are in one batch.
        flush_every: Duration::from_secs(3600),
        ..Default::default()
    };
    let state = common::state(pool.clone(), settings).await;
    let bodies = vec![
        started(A),
        started(B),
        step(A, "outline", 1, None),
        step(B, "outline", 1, None),
        prompt(A, "outline", "bad\u{0}prompt"),
        prompt(B, "outline", "b prompt"),
        response(A, "outline", "a response"),
        response(B, "outline", "b response"),
        step_done(A, "outline", StepStatus::Completed),
        step_done(B, "outline", StepStatus::Completed),
        EventBody::LogEntry(LogEntry {
            level: LogLevel::Info,
            message: "between".into(),
            timestamp: at(1),
            context: LogContext::default(),
        }),
    ];
    for body in bodies {
        state.bus.publish(body);
    }
    let completed = |id| {
        EventBody::PipelineCompleted(PipelineCompleted {
            execution_id: id,
            results: json!({}),
            totals: Totals::default(),
        })
    };
    // Published last, and flushing the batch: acknowledged once the batch is written.
    state.bus.publish(completed(A));
    state
        .bus
        .publish_durable(completed(B))
        .await
        .expect("B's run is stored");

    let rows: Vec<(Uuid, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT execution_id, status, prompt, response FROM step_executions ORDER BY execution_id",
    )
    .fetch_all(&pool)
    .await
    .expect("rows");
    assert_eq!(
        rows,
        [
            (A, "completed".into(), None, Some("a response".into())),
            (
                B,
                "completed".into(),
                Some("b prompt".into()),
                Some("b response".into())
            ),
        ]
    );
    let runs: Vec<String> =
        sqlx::query_scalar("SELECT status FROM pipeline_executions ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("runs");
    assert_eq!(runs, ["completed", "completed"]);

    let refused: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, name FROM events WHERE name IN ('prompt:sent', 'bus:resync') ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0].1, "bus:resync");
    assert_eq!(refused[1].1, "prompt:sent");
    let errors: Vec<String> =
        sqlx::query_scalar("SELECT message FROM log_entries WHERE level = 'error'")
            .fetch_all(&pool)
            .await
            .expect("log");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&format!("event {} (prompt:sent", refused[0].0)),
        "{errors:?}"
    );
    // B's prompt reads back whole from the log.
    let read = of_execution(&pool, B, 100).await.expect("read");
    assert!(read
        .iter()
        .any(|e| e.body == prompt(B, "outline", "b prompt")));
    state.shut_down().await;
}
