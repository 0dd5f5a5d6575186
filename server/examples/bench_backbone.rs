//! Benchmarks of the live event backbone against a real pipescope (release build, its own
//! PostgreSQL) on loopback. Prints figures; BENCHMARKS.md records them.
//!
//! ```sh
//! cargo build --release -p server --bin pipescope
//! cargo run --release -p server --example bench_backbone [-- --clients 1000 --seconds 10
//!     --idle 1000,10000 --rounds 2 --perf /tmp/pipescope.perf --only idle,fanout,replay,ingest]
//! ```
//! - idle: memory per idle SSE connection, on a fresh pipescope for each count: server RSS with
//!   N open `/api/events` streams minus its RSS before them
//! - fan-out: N SSE subscribers, 100 events/s published through the ingest API: deliveries/s,
//!   publish→receive latency p50/p99, server CPU and RSS; then the same against nginx with the
//!   nchan module (Debian's `nginx-light libnginx-mod-nchan`, its own config and port in a temp
//!   dir, started and stopped here), alternating, `--rounds` times each. `--perf FILE` records
//!   pipescope (`perf record -g`) while it fans out and prints the top entries
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
            // Every client here is 127.0.0.1: the streams of the idle and fan-out runs are one
            // client's. (Environment, not flags: a build from before the limits ignores them.)
            .env("PIPESCOPE_MAX_STREAMS", "1000000")
            .env("PIPESCOPE_MAX_STREAMS_PER_CLIENT", "1000000")
            .env("PIPESCOPE_INGEST_RATE", "1000000")
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
        rss_kb(self.child.id())
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

/// `VmRSS` of a process in KB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    field(11).unwrap_or(0) + field(12).unwrap_or(0)
}

/// A process and its children (nginx's master and workers).
fn family(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    for task in tasks.flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    pids
}

/// nginx with the nchan module, on its own port with its own config in a temp dir: the peer
/// the fan-out is compared with. The channel's subscribers get the same frames as pipescope's
/// (`event: log:entry`, the published JSON as `data:`).
struct Nchan {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Nchan {
    const NGINX: &'static str = "/usr/sbin/nginx";
    const MODULE: &'static str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

    async fn start(workers: &str) -> Result<Self, Error> {
        if !Path::new(Self::NGINX).exists() || !Path::new(Self::MODULE).exists() {
            return Err(format!(
                "nginx with nchan is not installed ({} or {} is missing): \
                 `apt-get install nginx-light libnginx-mod-nchan`, or leave it out with --only",
                Self::NGINX,
                Self::MODULE
            )
            .into());
        }
        let dir = tempfile::Builder::new()
            .prefix("pipescope-nchan-")
            .tempdir_in("/tmp")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = dir.path().display();
        // No logs on the hot path; `workers` nginx workers (`auto`: one per core).
        let config = format!(
            "load_module {module};
daemon off;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /sub {{ nchan_subscriber eventsource; nchan_channel_id bench; nchan_eventsource_event log:entry; }}
    location = /pub {{ nchan_publisher; nchan_channel_id bench; }}
  }}
}}
",
            module = Self::MODULE
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config)?;
        let error_log = dir.path().join("error.log");
        let mut child = Command::new(Self::NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&error_log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..100 {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&error_log).unwrap_or_default();
                return Err(format!("nginx exited ({status}):\n{log}").into());
            }
            if reqwest::get(format!("http://{addr}/pub")).await.is_ok() {
                return Ok(Self {
                    child,
                    addr,
                    _dir: dir,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        Err("nginx did not answer within 5 s".into())
    }

    fn stop(mut self) {
        // QUIT: workers finish what they are doing, the master removes its pid file.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// What a fan-out run subscribes to and publishes through.
enum Target<'a> {
    Pipescope(&'a Server),
    Nchan(&'a Nchan),
}

impl Target<'_> {
    fn name(&self) -> &'static str {
        match self {
            Target::Pipescope(_) => "pipescope",
            Target::Nchan(_) => "nginx+nchan",
        }
    }

    fn addr(&self) -> &str {
        match self {
            Target::Pipescope(server) => server.url.trim_start_matches("http://"),
            Target::Nchan(nchan) => &nchan.addr,
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Target::Pipescope(server) => vec![server.child.id()],
            Target::Nchan(nchan) => family(nchan.child.id()),
        }
    }

    fn rss_kb(&self) -> u64 {
        self.pids().into_iter().map(rss_kb).sum()
    }

    fn cpu_ticks(&self) -> u64 {
        self.pids().into_iter().map(cpu_ticks).sum()
    }

    fn subscribe_request(&self) -> &'static [u8] {
        match self {
            Target::Pipescope(_) => b"GET /api/events HTTP/1.1\r\nHost: bench\r\n\r\n",
            Target::Nchan(_) => {
                b"GET /sub HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
            }
        }
    }

    async fn subscribers(&self) -> u64 {
        let url = match self {
            Target::Pipescope(server) => format!("{}/api/bus/stats", server.url),
            Target::Nchan(nchan) => format!("http://{}/pub", nchan.addr),
        };
        let client = reqwest::Client::new();
        let request = client.get(url).header("accept", "application/json");
        let stats: Value = match request.send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        stats["subscribers"].as_u64().unwrap_or(0)
    }

    fn publisher(&self) -> Publisher {
        match self {
            Target::Pipescope(server) => Publisher::Ingest(server.url.clone()),
            Target::Nchan(nchan) => Publisher::Nchan(nchan.addr.clone()),
        }
    }
}

/// Where a fan-out publishes: pipescope's ingest API or nchan's publisher location, both one
/// HTTP POST per event.
#[derive(Clone)]
enum Publisher {
    Ingest(String),
    Nchan(String),
}

impl Publisher {
    /// Publishes one `log:entry` stamped now (the subscribers measure latency from `at`).
    async fn publish(&self, http: &reqwest::Client, message: &str) -> Result<(), Error> {
        let event = json!({"event": "log:entry", "at": Utc::now(),
            "data": {"level": "info", "message": message, "timestamp": Utc::now()}});
        match self {
            Publisher::Ingest(url) => post(http, url, &json!([event])).await.map(|_| ()),
            Publisher::Nchan(addr) => {
                let response = http
                    .post(format!("http://{addr}/pub"))
                    .json(&event)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    return Err(format!("nchan answered {}", response.status()).into());
                }
                Ok(())
            }
        }
    }
}

/// Memory per idle SSE connection: a fresh pipescope, its RSS before and with `clients` open
/// `/api/events` streams that have had time to settle.
async fn idle(dir: &Path, clients: usize) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    let server = Server::start(dir, &[])?;
    server.wait_healthy().await?;
    let base = server.subscribers().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_kb();
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut sockets = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut socket = tokio::net::TcpStream::connect(&addr).await?;
        socket
            .write_all(b"GET /api/events HTTP/1.1\r\nHost: bench\r\n\r\n")
            .await?;
        sockets.push(socket);
    }
    while server.subscribers().await < base + clients as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kb();
    println!(
        "idle: {clients} SSE connections on a fresh pipescope: RSS {before} -> {after} KB, {:.1} KB per connection",
        after.saturating_sub(before) as f64 / clients as f64
    );
    drop(sockets);
    server.stop();
    Ok(())
}

/// `clients` subscribers, 100 events/s for `seconds`: deliveries and publish → receive latency.
/// Returns the p99 in ms.
async fn fanout(
    target: &Target<'_>,
    clients: usize,
    seconds: u64,
    perf: Option<&str>,
) -> Result<f64, Error> {
    let name = target.name();
    let latencies = Arc::new(Mutex::new(Vec::<f64>::with_capacity(
        clients * 100 * seconds as usize,
    )));
    let received = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let base = target.subscribers().await;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        // Raw HTTP clients that only pick the publish time out of each frame: with a thousand of
        // them on the same two cores as the server, a full SSE/JSON parser would measure itself.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(target.addr()).await?;
        socket.write_all(target.subscribe_request()).await?;
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
    while target.subscribers().await < base + clients as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let recording = match perf {
        Some(file) => Some(
            Command::new("perf")
                .args(["record", "-g", "-o", file, "-p"])
                .arg(target.pids()[0].to_string())
                .args(["--", "sleep", &seconds.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot run perf ({e}): `apt-get install linux-perf`"))?,
        ),
        None => None,
    };
    let cpu_before = target.cpu_ticks();
    let started = Instant::now();
    let mut posts = Vec::new();
    let total = 100 * seconds;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let publisher = target.publisher();
    for i in 0..total {
        ticker.tick().await;
        let (http, publisher) = (http.clone(), publisher.clone());
        posts.push(tokio::spawn(async move {
            publisher.publish(&http, &format!("fanout {i}")).await
        }));
    }
    for p in posts {
        p.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = (target.cpu_ticks() - cpu_before) as f64 / 100.0; // USER_HZ = 100
    publisher.publish(&http, "end").await?;
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    // The next run counts on its own subscribers only: wait until these are gone.
    for _ in 0..200 {
        if target.subscribers().await <= base {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut all = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    all.sort_by(|a, b| a.total_cmp(b));
    let delivered = received.load(Ordering::Relaxed);
    let p99 = percentile(&all, 0.99);
    println!(
        "fan-out {name}: {total} events to {clients} subscribers in {elapsed:.1} s: {delivered} deliveries ({:.0}/s, {:.1}% of expected), latency p50 {:.2} ms, p99 {p99:.2} ms, max {:.2} ms; CPU {:.0}% of one core, RSS {} KB; load average {}",
        delivered as f64 / elapsed,
        delivered as f64 * 100.0 / (total as f64 * clients as f64),
        percentile(&all, 0.50),
        all.last().copied().unwrap_or(f64::NAN),
        cpu * 100.0 / elapsed,
        target.rss_kb(),
        load_average(),
    );
    if let (Some(mut recording), Some(file)) = (recording, perf) {
        recording.wait()?;
        print_perf_top(file)?;
    }
    Ok(p99)
}

/// The functions pipescope spent its time in while recorded (self time, not children).
fn print_perf_top(file: &str) -> Result<(), Error> {
    let report = Command::new("perf")
        .args([
            "report",
            "-i",
            file,
            "--stdio",
            "--no-children",
            "-g",
            "none",
        ])
        .args(["--sort", "dso,symbol", "--percent-limit", "1"])
        .stderr(Stdio::null())
        .output()?;
    println!("perf top entries (self time, {file}):");
    for line in String::from_utf8_lossy(&report.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(25)
    {
        // Without call graphs the report still pads two empty columns ("-  -"): drop them.
        println!("  {}", line.trim_end_matches([' ', '-']));
    }
    Ok(())
}

/// The 1-minute load average, printed with each figure: other work shares these 2 cores.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
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
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let number =
        |name: &str, default: u64| arg(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (clients, seconds) = (number("--clients", 1000) as usize, number("--seconds", 10));
    let rounds = number("--rounds", 2);
    let idle_counts: Vec<usize> = arg("--idle")
        .unwrap_or_else(|| "1000,10000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let only = arg("--only").unwrap_or_else(|| "idle,fanout,replay,ingest".into());
    let part = |name: &str| only.split(',').any(|p| p.trim() == name);
    let perf = arg("--perf");
    // 10,000 connections need more than the default 1024 file descriptors, here and in the
    // servers (they inherit the limit): as many as the hard limit allows.
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    let largest = idle_counts.iter().copied().max().unwrap_or(0).max(clients) as u64;
    if hard < largest + 100 {
        return Err(format!(
            "{largest} connections need at least {} open files, the hard limit is {hard}: \
             raise it (ulimit -Hn as root) or ask for fewer with --idle / --clients",
            largest + 100
        )
        .into());
    }

    let dir = tempfile::Builder::new()
        .prefix("pipescope-bench-")
        .tempdir_in("/tmp")?;
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    println!(
        "{} cores, load average {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        load_average()
    );
    if part("idle") {
        for &count in &idle_counts {
            idle(dir.path(), count).await?;
        }
    }

    let server = Server::start(dir.path(), &[])?;
    server.wait_healthy().await?;
    if part("fanout") {
        // Alternating, so that whatever else loads the machine meets both alike.
        let nchan = Nchan::start(&arg("--nchan-workers").unwrap_or_else(|| "auto".into())).await?;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Recorded in the first round only: perf itself costs CPU.
            let perf = perf.as_deref().filter(|_| round == 0);
            ours.push(fanout(&Target::Pipescope(&server), clients, seconds, perf).await?);
            theirs.push(fanout(&Target::Nchan(&nchan), clients, seconds, None).await?);
        }
        nchan.stop();
        let list = |p: &[f64]| {
            p.iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "fan-out p99 by round (ms): pipescope {}; nginx+nchan {}",
            list(&ours),
            list(&theirs)
        );
    }
    let mut first = None;
    if part("replay") {
        first = Some(replay(&server, None).await?);
    }
    if part("ingest") {
        ingest(&server, seconds).await?;
    }
    server.stop();

    if let Some(first) = first {
        // After a restart the window is empty: the same replay comes from Postgres.
        let server = Server::start(dir.path(), &[])?;
        server.wait_healthy().await?;
        print!("(from Postgres, after a restart) ");
        replay(&server, Some(first)).await?;
        server.stop();
    }
    Ok(())
}
