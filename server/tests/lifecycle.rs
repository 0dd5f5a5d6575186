//! The `pipescope` binary as a user runs it: its own PostgreSQL, Ctrl-C, restart, bad input.

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use app::models::Health;
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};

const BIN: &str = env!("CARGO_BIN_EXE_pipescope");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn pipescope(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env("PIPESCOPE_LOG", "warn")
        .stdin(Stdio::null());
    command
}

fn start(data_dir: &Path, port: u16) -> Child {
    pipescope(&[
        "--data-dir",
        data_dir.to_str().expect("utf-8 path"),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("pipescope starts")
}

async fn wait_healthy(port: u16) -> Health {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            if response.status().is_success() {
                return response.json().await.expect("health JSON");
            }
        }
        assert!(
            Instant::now() < deadline,
            "pipescope did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn interrupt_and_wait(mut child: Child) -> std::process::ExitStatus {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("signal");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "pipescope did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn psql(data_dir: &Path, sql: &str) -> Vec<String> {
    use sqlx::{postgres::PgConnectOptions, ConnectOptions, Row};
    let mut conn = PgConnectOptions::new()
        .socket(data_dir.join("run"))
        .username("postgres")
        .database("pipescope")
        .connect()
        .await
        .expect("connect to pipescope's own PostgreSQL");
    sqlx::query(sql)
        .fetch_all(&mut conn)
        .await
        .expect("query")
        .iter()
        .map(|row| row.try_get::<String, _>(0).unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn ctrl_c_stops_pipescope_and_its_postgres_and_the_data_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();

    let first = start(dir.path(), port);
    let health = wait_healthy(port).await;
    assert_eq!(health.database.mode, app::models::DatabaseMode::Embedded);
    assert_eq!(health.running_executions, 0);
    psql(
        dir.path(),
        "INSERT INTO pipeline_executions (id, pipeline_name, status) \
         VALUES ('11111111-1111-1111-1111-111111111111', 'kept', 'running') RETURNING id::text",
    )
    .await;

    let status = interrupt_and_wait(first);
    assert!(status.success(), "clean exit after Ctrl-C, got {status}");
    assert!(
        !dir.path().join("postgres/postmaster.pid").exists(),
        "PostgreSQL stopped with it (postmaster.pid removed)"
    );

    let second = start(dir.path(), port);
    let health = wait_healthy(port).await;
    assert_eq!(
        health.running_executions, 1,
        "the row written before the restart is there"
    );
    let names = psql(dir.path(), "SELECT pipeline_name FROM pipeline_executions").await;
    assert_eq!(names, ["kept"]);
    assert!(interrupt_and_wait(second).success());
}

#[tokio::test]
async fn sigterm_stops_it_cleanly_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let child = start(dir.path(), port);
    wait_healthy(port).await;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal");
    let output = child.wait_with_output().expect("exit");
    assert!(output.status.success());
    assert!(!dir.path().join("postgres/postmaster.pid").exists());
}

/// Bad input ends with one line that says what is wrong and a non-zero exit, never a panic.
fn assert_clear_failure(output: Output, code: i32, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("pipescope: "), "{stderr}");
    for word in expected {
        assert!(last.contains(word), "expected {word:?} in {last:?}");
    }
}

#[test]
fn an_unknown_flag_is_named() {
    let output = pipescope(&["--colour", "blue"]).output().expect("runs");
    assert_clear_failure(output, 2, &["--colour"]);
}

#[test]
fn an_invalid_listen_address_is_named_with_the_reason() {
    let output = pipescope(&["--listen", "localhost:http"])
        .output()
        .expect("runs");
    assert_clear_failure(output, 2, &["--listen", "localhost:http"]);
}

#[test]
fn an_unreachable_database_url_says_so_and_hides_the_password() {
    let port = free_port();
    let output = pipescope(&["--listen", &format!("127.0.0.1:{}", free_port())])
        .env(
            "DATABASE_URL",
            format!("postgres://me:s3cret@127.0.0.1:{port}/nothing"),
        )
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_clear_failure(output, 1, &["cannot reach the database", "DATABASE_URL"]);
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn a_data_dir_that_is_a_file_is_refused() {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let output = pipescope(&[
        "--data-dir",
        file.path().to_str().expect("utf-8"),
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
    ])
    .output()
    .expect("runs");
    assert_clear_failure(output, 1, &["data directory", "--data-dir"]);
}

#[test]
fn a_port_in_use_is_reported() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let output = pipescope(&["--listen", &addr.to_string()])
        .output()
        .expect("runs");
    assert_clear_failure(output, 1, &["already in use", "--listen"]);
}

/// Killing pipescope outright (no shutdown at all) loses nothing an ingest request was told
/// is stored, and its PostgreSQL goes down with it so the next start is clean.
#[tokio::test]
async fn a_killed_pipescope_keeps_every_acknowledged_event_and_restarts_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = start(dir.path(), port);
    wait_healthy(port).await;

    let execution = "22222222-2222-2222-2222-222222222222";
    let now = chrono::Utc::now();
    let batch = serde_json::json!([
        {"event": "pipeline:started", "data": {"execution_id": execution, "pipeline": "p", "started_at": now}},
        {"event": "log:entry", "data": {"level": "info", "message": "working", "timestamp": now,
            "context": {"execution_id": execution}}},
        {"event": "pipeline:completed", "data": {"execution_id": execution, "results": {"ok": true},
            "totals": {"tokens": 3, "cost_usd": 0.0, "duration_ms": 9}}}
    ]);
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/ingest/events"))
        .json(&batch)
        .send()
        .await
        .expect("ingest");
    assert_eq!(response.status(), 200);

    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");

    let second = start(dir.path(), port);
    wait_healthy(port).await;
    let rows = psql(
        dir.path(),
        &format!("SELECT status || ':' || (SELECT count(*) FROM log_entries)::text FROM pipeline_executions WHERE id = '{execution}'"),
    )
    .await;
    assert_eq!(rows, ["completed:1"]);
    assert!(interrupt_and_wait(second).success());
}
