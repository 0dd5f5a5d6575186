//! `pipescope validate FILE…`: problems as `file:line:column: message`, exit status 1 on any, no
//! server or database needed.

use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_pipescope");

fn validate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("validate")
        .args(args)
        // No database is opened: a URL that could never connect proves it.
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pipescope");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    child.wait_with_output().expect("output")
}

const VALID: &str = "name: ok\ndefaults: { provider: simulated, model: sim-small }\nsteps:\n  - name: one\n    prompt: \"Hello\"\n";
const INVALID: &str = "name: bad\nsteps:\n  - name: one\n    promt: \"Hello\"\n  - name: two\n    prompt: \"{{ steps.nope.output }}\"\n    provider: nowhere\n";

#[test]
fn problems_are_printed_like_a_compilers_and_fail_the_command() {
    let dir = tempfile::tempdir().expect("dir");
    let good = dir.path().join("good.yaml");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&good, VALID).expect("write");
    std::fs::write(&bad, INVALID).expect("write");
    let (good, bad) = (good.to_str().expect("utf-8"), bad.to_str().expect("utf-8"));

    let output = validate(&[good], None);
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "1 pipeline valid\n"
    );

    let output = validate(&[good, bad, "missing.yaml"], None);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // The unknown key, with its suggestion; the unknown step and provider; the missing file.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{bad}:4:5: ")) && l.contains("`prompt`")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{bad}:")) && l.contains("nope")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{bad}:")) && l.contains("nowhere")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("missing.yaml: cannot read it")),
        "{stdout}"
    );
    assert!(!stdout.contains(good), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.ends_with(&format!("{} problems in 2 files of 3\n", lines.len())),
        "{stderr}"
    );
}

#[test]
fn standard_input_is_read_for_a_dash() {
    let output = validate(&["-"], Some(INVALID));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("<stdin>:"));
    let output = validate(&["-"], Some(VALID));
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn without_files_it_says_what_is_missing() {
    let output = validate(&[], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("FILE"));
}

/// A pipescope with the `instant` simulated provider, served on a free port.
async fn served(pool: sqlx::PgPool) -> std::net::SocketAddr {
    let state =
        crate::common::state_with_providers(pool, Default::default(), &|_| None, Vec::new()).await;
    crate::common::serve(state).await
}

/// Runs the binary with `args` to its end; killed (failing the test) if it has not ended in
/// two minutes, however slow the machine: a hang is a bug, not a wait.
async fn pipescope(args: Vec<String>) -> Output {
    let child = tokio::process::Command::new(BIN)
        .args(&args)
        .env_remove("PIPESCOPE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("pipescope");
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .unwrap_or_else(|_| panic!("pipescope {args:?} did not end"))
    .expect("output")
}

#[sqlx::test(migrations = "../migrations")]
async fn run_starts_a_run_and_follows_it_to_its_end(pool: sqlx::PgPool) {
    let addr = served(pool).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("cli-run.yaml");
    std::fs::write(
        &file,
        "name: cli-run\ndefaults: { provider: instant, model: sim-small, max_tokens: 30 }\ninputs:\n  topic: {}\nsteps:\n  - name: outline\n    prompt: \"Outline {{ topic }}.\"\n  - name: draft\n    prompt: \"Expand {{ steps.outline.output }}\"\n",
    )
    .expect("write");
    let output = pipescope(vec![
        "run".into(),
        file.to_string_lossy().into_owned(),
        "--input".into(),
        "topic=CRDTs".into(),
        "--server".into(),
        format!("http://{addr}"),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("run ") && lines[0].contains("of cli-run v1"),
        "{stdout}"
    );
    for expected in [
        "▶ outline · instant/sim-small",
        "✓ outline · ",
        "▶ draft",
        "✓ draft · ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "{expected} in:\n{stdout}"
        );
    }
    assert!(
        lines.last().is_some_and(|l| l.starts_with("completed · ")),
        "{stdout}"
    );

    // A missing input: the server's own message, exit 1.
    let output = pipescope(vec![
        "run".into(),
        file.to_string_lossy().into_owned(),
        "--server".into(),
        format!("http://{addr}"),
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("topic"),
        "{output:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn no_server_there_is_said_plainly(_pool: sqlx::PgPool) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let output = pipescope(vec![
        "run".into(),
        "anything".into(),
        "--server".into(),
        format!("http://{addr}"),
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot reach pipescope at http://{addr}")),
        "{stderr}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn tail_prints_the_lines_of_the_levels_asked_for(pool: sqlx::PgPool) {
    use std::io::{BufRead, BufReader};
    let addr = served(pool).await;
    let subscribers = || async move {
        let stats: serde_json::Value = reqwest::get(format!("http://{addr}/api/bus/stats"))
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        stats["subscribers"].as_u64().unwrap_or(0)
    };
    let before = subscribers().await;
    let mut child = Command::new(BIN)
        .args([
            "tail",
            "--level",
            "warn,error",
            "--server",
            &format!("http://{addr}"),
        ])
        .env_remove("PIPESCOPE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tail");
    // Lines are sent once its stream is open, however long that takes.
    while subscribers().await == before {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let line = |id: &str, level: &str, message: &str| serde_json::json!({"id": id, "event": "log:entry", "data": {"level": level, "message": message, "timestamp": chrono::Utc::now()}});
    let body = serde_json::json!([
        line("tail-1", "info", "not shown"),
        line("tail-2", "warn", "disk nearly full"),
        line("tail-3", "error", "provider down"),
    ]);
    let (status, _) = crate::common::ingest(addr, body.to_string()).await;
    assert_eq!(status, 200);
    let stdout = child.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(2)
            .map(|l| l.expect("line"))
            .collect::<Vec<_>>()
    })
    .await
    .expect("joined");
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines[0].contains("warn  disk nearly full"), "{lines:?}");
    assert!(lines[1].contains("error provider down"), "{lines:?}");
}
