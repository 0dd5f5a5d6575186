//! Replay from the store: a client reconnecting with a Last-Event-ID older than the in-memory
//! window is sent what it missed from Postgres. Runs a real pipescope (release build, its own
//! PostgreSQL) on loopback and prints figures; BENCHMARKS.md records them.
//!
//! ```sh
//! cargo build --release -p server --bin pipescope
//! cargo run --release -p server --example bench_replay [-- --runs 5]
//! ```
//! - 10,000 stored events of realistic sizes (prompt:sent ~300 B, response:received ~400 B,
//!   step and pipeline events, log lines): time from connecting with Last-Event-ID to the
//!   10,000th event parsed by an SSE client (reqwest + eventsource-stream), p50 and min
//! - memory: server RSS before, at its peak and after 3 concurrent replays of 99,000 events
//!   (just under the most the store replays, 100,000), then of 280,000 (more than that: answered `bus:resync`)
//!
//! `PIPESCOPE_BIN` picks the server binary (default `target/release/pipescope`), so an older
//! build can be measured with the same client.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use app::models::EventBody;
use chrono::Utc;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Server {
    child: Child,
    url: String,
}

impl Server {
    async fn start(data_dir: &Path) -> Result<Self, Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let bin =
            std::env::var("PIPESCOPE_BIN").unwrap_or_else(|_| "target/release/pipescope".into());
        let data_dir = data_dir.to_str().ok_or("data dir is not UTF-8")?;
        let child = Command::new(bin)
            .args(["--data-dir", data_dir])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env_remove("DATABASE_URL")
            .env("PIPESCOPE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..600 {
            if let Ok(r) = reqwest::get(format!("{}/healthz", server.url)).await {
                if r.status().is_success() {
                    return Ok(server);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("pipescope did not start".into())
    }

    /// `VmRSS` (now) or `VmHWM` (peak since start) in KB.
    fn memory_kb(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// One run of four steps as an LLM pipeline reports it: 22 events, about 250 B on average.
fn run_events(execution: Uuid, run: usize) -> Vec<Value> {
    let now = Utc::now();
    let mut events = vec![json!({"event": "pipeline:started", "data": {
        "execution_id": execution, "pipeline": "research-brief", "config": {"steps": 4},
        "inputs": {"topic": format!("event sourcing {run}")}, "started_at": now}})];
    for step in ["outline", "draft", "critique", "final"] {
        events.extend([
            json!({"event": "step:started", "data": {"execution_id": execution, "step": step,
                "provider": "openai", "model": "gpt-4o-mini", "attempt": 1, "token_budget": 1024}}),
            json!({"event": "prompt:sent", "data": {"execution_id": execution, "step": step,
                "prompt": format!("Write the {step} of a short brief about event sourcing {run}: \
                    what an event store is, why projections are rebuilt from it, how consumers resume \
                    after a disconnect, and one pitfall. Keep it under 200 words, plain prose."),
                "template": "Write the {{ step }} of a short brief about {{ topic }}.",
                "variables": {"topic": format!("event sourcing {run}")}, "token_count": 58}}),
            json!({"event": "response:received", "data": {"execution_id": execution, "step": step,
                "response": format!("An event store keeps every change as an immutable fact, in \
                    order ({step}, run {run}). Read models are projections: folds over the log that \
                    can be dropped and rebuilt when their shape changes. A consumer remembers the \
                    last sequence number it saw and asks for what came after; the store answers \
                    with a range read. Pitfall: treating the projection as the source of truth."),
                "usage": {"prompt_tokens": 58, "completion_tokens": 74, "total_tokens": 132},
                "ttft_ms": 240}}),
            json!({"event": "step:completed", "data": {"execution_id": execution, "step": step,
                "duration_ms": 1830, "tokens": 132, "cost_usd": 0.000079, "status": "completed"}}),
            json!({"event": "log:entry", "data": {"level": "info",
                "message": format!("step {step} done in 1830 ms, 132 tokens"), "timestamp": now,
                "context": {"execution_id": execution, "step": step}}}),
        ]);
    }
    events.push(
        json!({"event": "pipeline:completed", "data": {"execution_id": execution,
        "results": {"final": "see response"},
        "totals": {"tokens": 528, "cost_usd": 0.000316, "duration_ms": 7400}}}),
    );
    events
}

/// Writes `n` events straight into the store (the server is stopped meanwhile), as the writer
/// would: payload, name, execution and step columns from the event itself.
async fn seed(data_dir: &Path, n: usize) -> Result<(), Error> {
    let options = sqlx::postgres::PgConnectOptions::new()
        .socket(data_dir.join("run"))
        .username("postgres")
        .database("pipescope");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let origin = Uuid::new_v4();
    let (mut written, mut run) = (0, 0);
    while written < n {
        let (mut names, mut executions, mut steps, mut payloads) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        while names.len() < 11_000 && written + names.len() < n {
            for value in run_events(Uuid::new_v4(), run) {
                // Through the model, so the stored JSON is what pipescope itself would store.
                let body: EventBody = serde_json::from_value(value)?;
                let scope = body.scope();
                names.push(body.name());
                executions.push(scope.execution_id);
                steps.push(scope.step.map(str::to_string));
                payloads.push(serde_json::to_value(&body)?);
                if written + names.len() == n {
                    break;
                }
            }
            run += 1;
        }
        sqlx::query(
            "INSERT INTO events (seq, name, execution_id, step_name, at, origin, payload)
             SELECT nextval('event_seq'), name, execution_id, step_name, now(), $5, payload
             FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::jsonb[])
                  WITH ORDINALITY AS e(name, execution_id, step_name, payload, n)
             ORDER BY n",
        )
        .bind(&names)
        .bind(&executions)
        .bind(&steps)
        .bind(&payloads)
        .bind(origin)
        .execute(&pool)
        .await?;
        written += names.len();
    }
    sqlx::query("ANALYZE events").execute(&pool).await?;
    pool.close().await;
    Ok(())
}

/// Connects with `Last-Event-ID: after` (`http` is made beforehand: making a client loads the
/// system's TLS roots, which would be timed too) and reads until `count` numbered events arrived or
/// a `bus:resync`; returns how many numbered events came and the time taken.
async fn replay(
    http: &reqwest::Client,
    url: &str,
    after: i64,
    count: usize,
) -> Result<(usize, Duration), Error> {
    let started = Instant::now();
    let response = http
        .get(format!("{url}/api/events"))
        .header("Last-Event-ID", after.to_string())
        .send()
        .await?;
    let mut stream = response.bytes_stream().eventsource();
    let mut received = 0;
    while received < count {
        let event = tokio::time::timeout(Duration::from_secs(120), stream.next())
            .await?
            .ok_or("stream ended")??;
        if event.event == "bus:resync" {
            break;
        }
        if !event.id.is_empty() {
            received += 1;
        }
    }
    Ok((received, started.elapsed()))
}

/// RSS before, peak and after `clients` concurrent replays from `after`.
async fn concurrent(
    server: &Server,
    clients: usize,
    after: i64,
    count: usize,
) -> Result<(), Error> {
    let before = server.memory_kb("VmRSS:");
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn({
                let url = server.url.clone();
                async move { replay(&reqwest::Client::new(), &url, after, count).await }
            })
        })
        .collect();
    let mut received = Vec::new();
    for task in tasks {
        received.push(task.await??.0);
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "{clients} concurrent replays after {after} ({count} stored): received {received:?} events in {:.1} s; server RSS {} MB before, peak {} MB, {} MB after",
        elapsed.as_secs_f64(),
        before / 1024,
        server.memory_kb("VmHWM:") / 1024,
        server.memory_kb("VmRSS:") / 1024,
    );
    Ok(())
}

async fn restart(server: Server, data_dir: &Path) -> Result<Server, Error> {
    server.stop();
    Server::start(data_dir).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::Builder::new()
        .prefix("pipescope-bench-")
        .tempdir_in("/tmp")?;
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let server = Server::start(dir.path()).await?;
    println!("pipescope {}", server.url);

    // Seeded with the server up (it owns the embedded PostgreSQL), then restarted: the memory
    // window is empty, so every replay comes from the store.
    seed(dir.path(), 10_000).await?;
    let server = restart(server, dir.path()).await?;
    let (http, mut times) = (reqwest::Client::new(), Vec::new());
    for _ in 0..runs {
        let (received, elapsed) = replay(&http, &server.url, 0, 10_000).await?;
        if received != 10_000 {
            return Err(format!("replayed {received} of 10,000").into());
        }
        times.push(elapsed.as_secs_f64() * 1000.0);
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "replay of 10,000 stored events to an SSE client: p50 {:.1} ms, min {:.1} ms (runs: {})",
        sorted[sorted.len() / 2],
        sorted[0],
        times
            .iter()
            .map(|t| format!("{t:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    seed(dir.path(), 89_000).await?;
    let server = restart(server, dir.path()).await?;
    concurrent(&server, 3, 0, 99_000).await?;

    seed(dir.path(), 181_000).await?;
    let server = restart(server, dir.path()).await?;
    concurrent(&server, 3, 0, 280_000).await?;
    server.stop();
    Ok(())
}
