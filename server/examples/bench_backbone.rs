//! Benchmarks of the live event backbone against a real pipescope (release build, its own
//! PostgreSQL) on loopback. Prints figures; BENCHMARKS.md records them.
//!
//! ```sh
//! cargo leptos build --release
//! cargo run --release -p server --example bench_backbone [-- --clients 1000 --seconds 10]
//! ```
//! - fan-out: N SSE subscribers, 100 events/s published through the ingest API: deliveries/s,
//!   publish→receive latency p50/p99, server CPU and RSS, memory per idle connection
//! - ingest: events/s through POST /api/ingest/events (batched writes) vs the same rows
//!   written one statement at a time
//! - replay: reconnecting 10,000 events back, time to the last replayed event (from memory, and
//!   from Postgres after a restart)

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Server {
    child: Child,
    url: String,
    data_dir: PathBuf,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Result<Self, Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let bin =
            std::env::var("PIPESCOPE_BIN").unwrap_or_else(|_| "target/release/pipescope".into());
        let child = Command::new(bin)
            .args([
                "--data-dir",
                data_dir.to_str().unwrap_or("."),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(extra)
            .env_remove("DATABASE_URL")
            .env("PIPESCOPE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
        })
    }

    async fn wait_healthy(&self) -> Result<(), Error> {
        for _ in 0..600 {
            if let Ok(r) = reqwest::get(format!("{}/healthz", self.url)).await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("pipescope did not start".into())
    }

    fn rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }

    /// utime + stime in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
    }

    async fn subscribers(&self) -> u64 {
        let stats: Value = match reqwest::get(format!("{}/api/bus/stats", self.url)).await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        stats["subscribers"].as_u64().unwrap_or(0)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn log_event(id: String, message: &str) -> Value {
    json!({"id": id, "event": "log:entry",
           "data": {"level": "info", "message": message, "timestamp": Utc::now()}})
}

async fn post(client: &reqwest::Client, url: &str, batch: &Value) -> Result<Value, Error> {
    let response = client
        .post(format!("{url}/api/ingest/events"))
        .json(batch)
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!(
            "ingest answered {}: {}",
            response.status(),
            response.text().await?
        )
        .into());
    }
    Ok(response.json().await?)
}

async fn fanout(server: &Server, clients: usize, seconds: u64) -> Result<(), Error> {
    let rss_before = server.rss_kb();
    let latencies = Arc::new(Mutex::new(Vec::<f64>::with_capacity(
        clients * 100 * seconds as usize,
    )));
    let received = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        // Raw HTTP clients that only pick the publish time out of each frame: with a thousand of
        // them on the same two cores as the server, a full SSE/JSON parser would measure itself.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket =
            tokio::net::TcpStream::connect(server.url.trim_start_matches("http://")).await?;
        socket
            .write_all(b"GET /api/events HTTP/1.1\r\nHost: bench\r\n\r\n")
            .await?;
        let latencies = latencies.clone();
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let (mut local, mut pending, mut buf) =
                (Vec::new(), Vec::<u8>::new(), vec![0u8; 64 * 1024]);
            'read: while let Ok(n @ 1..) = socket.read(&mut buf).await {
                let now = Utc::now();
                pending.extend_from_slice(&buf[..n]);
                while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                    let frame = String::from_utf8_lossy(&pending[..end]).into_owned();
                    pending.drain(..end + 2);
                    if !frame.contains("event: log:entry") {
                        continue;
                    }
                    if frame.contains("\"message\":\"end\"") {
                        break 'read;
                    }
                    let at = frame
                        .split("\"at\":\"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok());
                    if let Some(at) = at {
                        local.push(
                            (now - at.with_timezone(&Utc))
                                .num_microseconds()
                                .unwrap_or(0) as f64
                                / 1000.0,
                        );
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies.lock().map(|mut l| l.extend(local)).ok();
        }));
    }
    while server.subscribers().await < clients as u64 + 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = server.rss_kb();
    println!(
        "fan-out: {clients} idle SSE connections: server RSS {} -> {} KB, {:.1} KB per connection",
        rss_before,
        rss_idle,
        (rss_idle.saturating_sub(rss_before)) as f64 / clients as f64
    );

    let cpu_before = server.cpu_ticks();
    let started = Instant::now();
    let mut posts = Vec::new();
    let total = 100 * seconds;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    for i in 0..total {
        ticker.tick().await;
        let http = http.clone();
        let url = server.url.clone();
        let batch = json!([{"event": "log:entry", "at": Utc::now(),
            "data": {"level": "info", "message": format!("fanout {i}"), "timestamp": Utc::now()}}]);
        posts.push(tokio::spawn(async move {
            post(&http, &url, &batch).await.map(|_| ())
        }));
    }
    for p in posts {
        p.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = (server.cpu_ticks() - cpu_before) as f64 / 100.0; // USER_HZ = 100
    post(
        &http,
        &server.url,
        &json!([log_event(
            format!("end-{}", Utc::now().timestamp_nanos_opt().unwrap_or(0)),
            "end"
        )]),
    )
    .await?;
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let mut all = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    all.sort_by(|a, b| a.total_cmp(b));
    let delivered = received.load(Ordering::Relaxed);
    println!(
        "fan-out: {total} events to {clients} subscribers in {elapsed:.1} s: {delivered} deliveries ({:.0}/s, {:.1}% of expected), latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; server CPU {:.0}% of one core, RSS {} KB",
        delivered as f64 / elapsed,
        delivered as f64 * 100.0 / (total as f64 * clients as f64),
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        cpu * 100.0 / elapsed,
        server.rss_kb()
    );
    Ok(())
}

async fn ingest(server: &Server, seconds: u64) -> Result<(), Error> {
    let http = reqwest::Client::new();
    let counter = Arc::new(AtomicU64::new(0));
    // Bodies are built before the clock starts: the figure is the server's, not the client's.
    let batches_per_worker = 25 * seconds as usize;
    let bodies: Vec<Vec<Vec<u8>>> = (0..4)
        .map(|w| {
            (0..batches_per_worker)
                .map(|n| {
                    let batch: Vec<Value> = (0..1000)
                        .map(|i| {
                            log_event(
                                format!("ingest-{w}-{n}-{i}"),
                                "a log line of a pipeline run elsewhere",
                            )
                        })
                        .collect();
                    serde_json::to_vec(&batch).unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for bodies in bodies {
        let (http, url, counter) = (http.clone(), server.url.clone(), counter.clone());
        workers.push(tokio::spawn(async move {
            for body in bodies {
                if Instant::now() >= deadline {
                    break;
                }
                let response = http
                    .post(format!("{url}/api/ingest/events"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    return Err::<(), Error>(
                        format!("ingest answered {}", response.status()).into(),
                    );
                }
                counter.fetch_add(1000, Ordering::Relaxed);
            }
            Ok::<(), Error>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let batched = counter.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("ingest: {batched:.0} events/s through POST /api/ingest/events (batches of 1000, 4 clients, ids checked)");

    // The same rows, one statement per row, as a naive writer would.
    let options = sqlx::postgres::PgConnectOptions::new()
        .socket(server.data_dir.join("run"))
        .username("postgres")
        .database("pipescope");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..4 {
        let (pool, counter) = (pool.clone(), counter.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let seq: i64 = sqlx::query_scalar("SELECT nextval('event_seq')").fetch_one(&pool).await?;
                let payload = log_event(String::new(), "a log line of a pipeline run elsewhere");
                sqlx::query("INSERT INTO events (seq, name, at, origin, client_id, payload) VALUES ($1, 'log:entry', now(), gen_random_uuid(), $2, $3)")
                    .bind(seq)
                    .bind(format!("row-{w}-{n}"))
                    .bind(&payload)
                    .execute(&pool)
                    .await?;
                sqlx::query("INSERT INTO log_entries (level, message, logged_at) VALUES ('info', $1, now())")
                    .bind("a log line of a pipeline run elsewhere")
                    .execute(&pool)
                    .await?;
                counter.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            Ok::<(), Error>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let single = counter.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!(
        "ingest: {single:.0} events/s written row by row (4 connections); batched is {:.1}x faster",
        batched / single
    );
    pool.close().await;
    Ok(())
}

/// Publishes 10,000 events, then reconnects from just before them; returns the first seq.
async fn replay(server: &Server, first: Option<i64>) -> Result<i64, Error> {
    let http = reqwest::Client::new();
    let first = match first {
        Some(first) => first,
        None => {
            let mut first = None;
            for b in 0..10 {
                let batch: Vec<Value> = (0..1000)
                    .map(|i| log_event(format!("replay-{b}-{i}"), "replayed"))
                    .collect();
                let receipt = post(&http, &server.url, &Value::Array(batch)).await?;
                first = first.or(receipt["seqs"][0].as_i64());
            }
            first.ok_or("no seq")?
        }
    };
    // A raw HTTP client that only counts frames, so the figure is the server's, not a parser's.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let mut socket =
        tokio::net::TcpStream::connect(server.url.trim_start_matches("http://")).await?;
    socket
        .write_all(
            format!(
                "GET /api/events HTTP/1.1\r\nHost: bench\r\nLast-Event-ID: {}\r\n\r\n",
                first - 1
            )
            .as_bytes(),
        )
        .await?;
    let needle = b"\nevent: log:entry";
    let (mut count, mut carry, mut buf) = (0, Vec::new(), vec![0u8; 1 << 20]);
    while count < 10_000 {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Err("stream ended early".into());
        }
        carry.extend_from_slice(&buf[..n]);
        count += carry.windows(needle.len()).filter(|w| w == needle).count();
        let keep = carry.len().saturating_sub(needle.len() - 1);
        carry.drain(..keep);
    }
    println!(
        "replay: 10,000 events from Last-Event-ID, last one received after {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(first)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let (clients, seconds) = (arg("--clients", 1000) as usize, arg("--seconds", 10));
    // 1000 connections need more than the default 1024 file descriptors, here and in the server.
    let _ =
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 65_536, 65_536);

    let dir = tempfile::Builder::new()
        .prefix("pipescope-bench-")
        .tempdir_in("/tmp")?;
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let server = Server::start(dir.path(), &[])?;
    server.wait_healthy().await?;
    println!(
        "pipescope {} on {} cores",
        server.url,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    fanout(&server, clients, seconds).await?;
    let first = replay(&server, None).await?;
    ingest(&server, seconds).await?;
    server.stop();

    // After a restart the window is empty: the same replay comes from Postgres.
    let server = Server::start(dir.path(), &[])?;
    server.wait_healthy().await?;
    print!("(from Postgres, after a restart) ");
    replay(&server, Some(first)).await?;
    server.stop();
    Ok(())
}
