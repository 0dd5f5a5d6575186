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
        health.running_executions, 0,
        "a run no instance is executing any more is not running"
    );
    let rows = psql(
        dir.path(),
        "SELECT pipeline_name || ' ' || status FROM pipeline_executions",
    )
    .await;
    assert_eq!(
        rows,
        ["kept interrupted"],
        "the row written before the restart is there, marked interrupted"
    );
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

#[tokio::test]
async fn the_pipelines_folder_loads_at_start_and_demo_mode_runs_it_until_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).expect("pipelines dir");
    std::fs::write(
        pipelines.join("good.yaml"),
        "name: good\ndefaults: { max_tokens: 400 }\nsteps:\n  - name: one\n    prompt: hello\n  - name: two\n    prompt: \"{{ steps.one.output }}\"\n",
    )
    .expect("write");
    std::fs::write(
        pipelines.join("bad.yaml"),
        "name: bad\nsteps:\n  - name: one\n    promt: hi\n",
    )
    .expect("write");
    let port = free_port();
    let child = pipescope(&[
        "--data-dir",
        dir.path().join("data").to_str().expect("utf-8"),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--pipelines-dir",
        pipelines.to_str().expect("utf-8"),
        "--demo",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("pipescope starts");
    wait_healthy(port).await;

    let list: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/api/pipelines"))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["good"], "the invalid file is skipped");
    assert_eq!(list[0]["source"], "file");

    // The demo starts runs on its own, and they stream.
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    let response = reqwest::get(format!("http://127.0.0.1:{port}/api/events"))
        .await
        .expect("events");
    let mut events = response.bytes_stream().eventsource();
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(seen.contains("pipeline:started") && seen.contains("response:streaming")) {
        assert!(Instant::now() < deadline, "no demo activity, saw {seen:?}");
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event")
            .expect("open")
            .expect("well-formed");
        seen.insert(event.event);
    }

    // Stopping mid-run leaves no run "running": it is interrupted, and can be re-run.
    assert!(interrupt_and_wait(child).success());
    let child = start(&dir.path().join("data"), port);
    wait_healthy(port).await;
    let statuses = psql(
        &dir.path().join("data"),
        "SELECT DISTINCT status FROM pipeline_executions WHERE status NOT IN ('completed', 'failed')",
    )
    .await;
    assert_eq!(statuses, ["interrupted"]);
    assert!(interrupt_and_wait(child).success());
}
