//! Database faults that pass are waited out, not blamed on the events: with the disk full, live
//! delivery goes on, the writes wait in memory, `/healthz` says what waits and why, and once
//! there is space everything is written (nothing refused) and the log tells the wait's start and
//! end. A read-only database (a failover) holds numbering the same way.

use std::time::Duration;

use app::models::EventBody;
use serde_json::Value;
use server::state::BackboneSettings;
use sqlx::{ConnectOptions, PgPool};

use crate::common::{connect, log, serve, state};

/// How long a loaded machine may take to show what is certain to happen (the loops end as soon
/// as it does): a failure here means it did not happen, not that the machine was slow.
const PATIENCE: Duration = Duration::from_secs(60);

/// `/healthz` once it reports a wait of `waiter` (it keeps retrying, so it will), with its
/// status code.
async fn health_waiting(addr: std::net::SocketAddr, waiter: &str) -> (u16, Value) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let response = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .expect("healthz");
        let code = response.status().as_u16();
        let health: Value = response.json().await.expect("json");
        let waits = health["waiting"].as_array().cloned().unwrap_or_default();
        if waits.iter().any(|w| w["waiter"] == waiter) {
            return (code, health);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no wait of {waiter} reported: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stored log lines starting with `prefix`, once there are any (published after a wait
/// ends, written with the next flush).
async fn logged(pool: &PgPool, prefix: &str) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let lines: Vec<(String, String)> = sqlx::query_as(
            "SELECT level, message FROM log_entries WHERE starts_with(message, $1) ORDER BY id",
        )
        .bind(prefix)
        .fetch_all(pool)
        .await
        .expect("log lines");
        if !lines.is_empty() {
            return lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line starting {prefix:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_full_disk_is_waited_out_visibly_while_live_delivery_goes_on(pool: PgPool) {
    let settings = BackboneSettings {
        flush_every: Duration::from_millis(50),
        ..Default::default()
    };
    let state = state(pool.clone(), settings).await;
    let addr = serve(state.clone()).await;
    let mut client = connect(addr, "", None).await;
    // What PostgreSQL says when it cannot extend a file, on every write of the event log.
    sqlx::raw_sql(
        "CREATE FUNCTION disk_is_full() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             RAISE EXCEPTION 'could not extend file: No space left on device'
                 USING ERRCODE = 'disk_full';
         END $$;
         CREATE TRIGGER disk_is_full BEFORE INSERT ON events
             FOR EACH STATEMENT EXECUTE FUNCTION disk_is_full();",
    )
    .execute(&pool)
    .await
    .expect("a full disk");

    for i in 0..20 {
        state.bus.publish(log(&format!("during {i}")));
    }
    let bus = state.bus.clone();
    let last = tokio::spawn(async move { bus.publish_durable(log("during 20")).await });

    // Live delivery goes on while the writes wait.
    let mut seen = Vec::new();
    while seen.len() < 21 {
        let frame = client.next().await;
        if let EventBody::LogEntry(entry) = frame.decode().body {
            if entry.message.starts_with("during ") {
                seen.push(entry.message);
            }
        }
    }
    let (code, health) = health_waiting(addr, "writing").await;
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["status"], "degraded");
    let wait = &health["waiting"][0];
    assert_eq!(wait["fault"], "disk_full", "{health}");
    assert!(
        wait["error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left on device")),
        "{health}"
    );
    let said = health["database"]["error"].as_str().unwrap_or_default();
    assert!(
        said.starts_with("writing events has waited since") && said.contains("free space"),
        "{said}"
    );
    assert!(!last.is_finished(), "acknowledged before it was written");

    // Space again: everything is written, in order, nothing refused.
    sqlx::raw_sql("DROP TRIGGER disk_is_full ON events")
        .execute(&pool)
        .await
        .expect("space");
    let seq = last.await.expect("task").expect("written");
    let stored: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, payload->'data'->>'message' FROM events
         WHERE name = 'log:entry' AND starts_with(payload->'data'->>'message', 'during ')
         ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    let messages: Vec<&str> = stored.iter().map(|(_, m)| m.as_str()).collect();
    let want: Vec<String> = (0..21).map(|i| format!("during {i}")).collect();
    assert_eq!(messages, want);
    assert_eq!(stored.last().map(|(s, _)| *s), Some(seq));
    assert_eq!(state.bus.writer().flush_metrics().refused, 0);

    // The log tells the wait and its end; the health is back.
    let started = logged(&pool, "writing events has waited since").await;
    assert_eq!(started[0].0, "warn");
    assert!(
        started[0].1.contains("PostgreSQL's disk is full"),
        "{started:?}"
    );
    let ended = logged(&pool, "writing events resumed after").await;
    assert_eq!(ended[0].0, "info");
    let health: Value = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health.get("waiting").is_none(), "{health}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_read_only_database_holds_numbering_until_it_takes_writes_again(pool: PgPool) {
    let state = state(pool.clone(), BackboneSettings::default()).await;
    let addr = serve(state.clone()).await;
    // Outside the pool: this session stays writable, the pool's new ones start read-only.
    let mut admin = pool
        .connect_options()
        .as_ref()
        .clone()
        .connect()
        .await
        .expect("admin connection");
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut admin)
        .await
        .expect("name");
    let reconnect_all = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE datname = current_database() AND pid <> pg_backend_pid()";
    sqlx::query(&format!(
        "ALTER DATABASE \"{database}\" SET default_transaction_read_only = on"
    ))
    .execute(&mut admin)
    .await
    .expect("read-only");
    sqlx::query(reconnect_all)
        .execute(&mut admin)
        .await
        .expect("reconnect");

    let bus = state.bus.clone();
    let published = tokio::spawn(async move { bus.publish_durable(log("after failover")).await });
    let (code, health) = health_waiting(addr, "numbering").await;
    assert_eq!(code, 503, "{health}");
    let wait = health["waiting"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["waiter"] == "numbering"))
        .cloned()
        .expect("numbering waits");
    assert_eq!(wait["fault"], "read_only", "{health}");
    assert!(!published.is_finished());

    sqlx::query(&format!(
        "ALTER DATABASE \"{database}\" RESET default_transaction_read_only"
    ))
    .execute(&mut admin)
    .await
    .expect("writable");
    sqlx::query(reconnect_all)
        .execute(&mut admin)
        .await
        .expect("reconnect");
    published.await.expect("task").expect("written");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM log_entries WHERE message = 'after failover'")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(stored, 1);
    let ended = logged(&pool, "numbering events resumed after").await;
    assert!(ended[0].1.contains("accepts reads only"), "{ended:?}");
}
