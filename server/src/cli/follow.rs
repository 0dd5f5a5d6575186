//! `pipescope run` and `pipescope tail`: a terminal following a running server through its API
//! and its event stream, as the dashboard does. The stream is resumed by `Last-Event-ID` when it
//! drops, so a server restart or a network blip loses nothing.

use std::{
    io::{BufRead, Write},
    path::Path,
    process::ExitCode,
    time::Duration,
};

use app::{
    format,
    models::{events::StepStatus, Event, EventBody, LogLevel},
};
use futures::{Stream, StreamExt};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::config::{Config, ServerArg};

/// The server's API, with the token given to pipescope (--token / PIPESCOPE_TOKEN).
struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(config: &Config, server: &ServerArg) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: server.url.trim_end_matches('/').to_owned(),
            // The read token is enough for `tail`.
            token: config
                .token
                .as_ref()
                .or(config.read_token.as_ref())
                .map(|t| t.expose().to_owned()),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request`; a refusal becomes the server's own message.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        let message = body["error"].as_str().unwrap_or("no reason given");
        Err(match status.as_u16() {
            401 => format!("{message} (give the token in PIPESCOPE_TOKEN)"),
            _ => format!("the server answered {status}: {message}"),
        })
    }

    fn unreachable(&self, error: &reqwest::Error) -> String {
        format!(
            "cannot reach pipescope at {} ({error}); is it running there? (--server / \
             PIPESCOPE_SERVER)",
            self.base
        )
    }

    /// Opens the event stream (`query` narrows it), then yields its events, resuming from
    /// the last one seen whenever it drops. Opened before returning, so a caller that starts
    /// something afterwards misses none of its events.
    async fn follow(&self, query: String) -> Result<impl Stream<Item = Event> + '_, String> {
        let first = self
            .send(self.request(reqwest::Method::GET, &format!("/api/events{query}")))
            .await?;
        Ok(async_stream::stream! {
            let mut last: Option<i64> = None;
            let mut response = Some(first);
            loop {
                if let Some(open) = response.take() {
                    let mut frames = eventsource_stream::Eventsource::eventsource(open.bytes_stream());
                    while let Some(Ok(frame)) = frames.next().await {
                        if let Ok(seq) = frame.id.parse() {
                            last = Some(seq);
                        }
                        if let Ok(event) = serde_json::from_str::<Event>(&frame.data) {
                            yield event;
                        }
                    }
                    eprintln!("(the event stream dropped; reconnecting)");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                let mut request = self.request(reqwest::Method::GET, &format!("/api/events{query}"));
                if let Some(seq) = last {
                    request = request.header("Last-Event-ID", seq.to_string());
                }
                if let Ok(open) = self.send(request).await {
                    eprintln!("(resumed)");
                    response = Some(open);
                }
            }
        })
    }
}

/// `pipescope run NAME|FILE --input k=v …`.
pub async fn run(
    config: &Config,
    pipeline: &str,
    inputs: &[(String, String)],
    provider: Option<&str>,
    model: Option<&str>,
    server: &ServerArg,
) -> ExitCode {
    let client = Client::new(config, server);
    let mut body = Map::new();
    if Path::new(pipeline).is_file() {
        match std::fs::read_to_string(pipeline) {
            Ok(yaml) => body.insert("yaml".into(), yaml.into()),
            Err(error) => {
                eprintln!("pipescope: cannot read {pipeline}: {error}");
                return ExitCode::FAILURE;
            }
        };
    } else {
        body.insert("pipeline".into(), pipeline.into());
    }
    let inputs: Map<String, Value> = inputs
        .iter()
        .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
        .collect();
    body.insert("inputs".into(), inputs.into());
    if let Some(provider) = provider {
        body.insert("provider".into(), provider.into());
    }
    if let Some(model) = model {
        body.insert("model".into(), model.into());
    }

    // The stream is open before the start: nothing of the run can be missed.
    let events = match client.follow(String::new()).await {
        Ok(events) => events,
        Err(error) => {
            eprintln!("pipescope: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut events = std::pin::pin!(events);
    let started = client
        .send(
            client
                .request(reqwest::Method::POST, "/api/executions")
                .json(&Value::Object(body)),
        )
        .await;
    let started: Value = match started {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(error) => {
            eprintln!("pipescope: {error}");
            return ExitCode::FAILURE;
        }
    };
    let Some(id) = started["execution_id"]
        .as_str()
        .and_then(|s| s.parse::<Uuid>().ok())
    else {
        eprintln!("pipescope: the server did not say which run it started: {started}");
        return ExitCode::FAILURE;
    };
    println!(
        "run {id} of {} v{} — {}/runs/{id}",
        started["pipeline"].as_str().unwrap_or(pipeline),
        started["version"],
        client.base
    );

    let mut printer = RunPrinter::default();
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(event) if event.body.scope().execution_id == Some(id) => {
                    if let Some(code) = printer.show(&event.body) {
                        return code;
                    }
                }
                Some(_) => {}
                None => return ExitCode::FAILURE,
            },
            _ = tokio::signal::ctrl_c() => {
                if !ask("\ncancel the run on the server? [y/N] ").await {
                    println!("the run goes on: {}/runs/{id}", client.base);
                    return ExitCode::from(130);
                }
                let cancel = client
                    .request(reqwest::Method::POST, &format!("/api/executions/{id}/cancel"))
                    .json(&json!({"reason": "cancelled from the command line"}));
                if let Err(error) = client.send(cancel).await {
                    eprintln!("pipescope: {error}");
                }
            }
        }
    }
}

/// What a run's events look like in a terminal.
#[derive(Default)]
struct RunPrinter {
    /// A response is being printed: the next line starts on a new one.
    streaming: bool,
}

impl RunPrinter {
    /// Prints one event of the run; the exit status once it is the last one.
    fn show(&mut self, body: &EventBody) -> Option<ExitCode> {
        let mut out = std::io::stdout().lock();
        let mut line = |streaming: &mut bool, text: String| {
            if std::mem::take(streaming) {
                let _ = writeln!(out);
            }
            let _ = writeln!(out, "{text}");
        };
        match body {
            EventBody::StepStarted(e) => {
                let attempt = if e.attempt > 1 {
                    format!(" (attempt {})", e.attempt)
                } else {
                    String::new()
                };
                line(
                    &mut self.streaming,
                    format!("▶ {} · {}/{}{attempt}", e.step, e.provider, e.model),
                );
            }
            EventBody::ResponseStreaming(e) => {
                let _ = write!(out, "{}", e.chunk);
                let _ = out.flush();
                self.streaming = true;
            }
            EventBody::StepCompleted(e) => {
                let figures = format!(
                    "{} · {} tokens · {}",
                    format::duration_ms(i64::try_from(e.duration_ms).unwrap_or(i64::MAX)),
                    format::count(i64::from(e.tokens)),
                    format::usd(e.cost_usd)
                );
                let text = match e.status {
                    StepStatus::Completed => format!("✓ {} · {figures}", e.step),
                    status => format!(
                        "✗ {} {} · {figures}{}",
                        e.step,
                        status.as_str(),
                        e.error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ),
                };
                line(&mut self.streaming, text);
            }
            EventBody::LogEntry(e) if matches!(e.level, LogLevel::Warn | LogLevel::Error) => {
                line(
                    &mut self.streaming,
                    format!("  {}: {}", e.level.as_str(), e.message),
                );
            }
            EventBody::PipelineCompleted(e) => {
                line(
                    &mut self.streaming,
                    format!(
                        "completed · {} · {} tokens · {}",
                        format::duration_ms(
                            i64::try_from(e.totals.duration_ms).unwrap_or(i64::MAX)
                        ),
                        format::count(i64::try_from(e.totals.tokens).unwrap_or(i64::MAX)),
                        format::usd(e.totals.cost_usd)
                    ),
                );
                return Some(ExitCode::SUCCESS);
            }
            EventBody::PipelineError(e) => {
                line(&mut self.streaming, format!("failed: {}", e.error));
                return Some(ExitCode::FAILURE);
            }
            EventBody::PipelineCancelled(_) => {
                line(&mut self.streaming, "cancelled".to_owned());
                return Some(ExitCode::FAILURE);
            }
            _ => {}
        }
        None
    }
}

/// Asks a yes/no question on the terminal; no answer (end of input) is no.
async fn ask(question: &str) -> bool {
    print!("{question}");
    let _ = std::io::stdout().flush();
    tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).is_ok()
            && matches!(answer.trim(), "y" | "Y" | "yes")
    })
    .await
    .unwrap_or(false)
}

/// `pipescope tail [--run ID] [--level …]`: log lines as they are logged, until Ctrl-C.
pub async fn tail(
    config: &Config,
    run: Option<Uuid>,
    levels: &[LogLevel],
    server: &ServerArg,
) -> ExitCode {
    let client = Client::new(config, server);
    let query = run.map(|id| format!("?execution={id}")).unwrap_or_default();
    let events = match client.follow(query).await {
        Ok(events) => events,
        Err(error) => {
            eprintln!("pipescope: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut events = std::pin::pin!(events);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Event { body: EventBody::LogEntry(line), .. }) => {
                    if !levels.is_empty() && !levels.contains(&line.level) {
                        continue;
                    }
                    let scope = match (&line.context.execution_id, &line.context.step) {
                        (Some(id), Some(step)) => format!(" [{} {step}]", short(id)),
                        (Some(id), None) => format!(" [{}]", short(id)),
                        _ => String::new(),
                    };
                    let fields = if line.context.fields.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", Value::Object(line.context.fields.clone()))
                    };
                    println!(
                        "{} {:<5}{scope} {}{fields}",
                        format::clock_millis(&line.timestamp),
                        line.level.as_str(),
                        line.message
                    );
                }
                Some(Event { body: EventBody::BusResync(_), .. }) => {
                    eprintln!("(the server could not replay everything missed; some lines may be missing)");
                }
                Some(_) => {}
                None => return ExitCode::FAILURE,
            },
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
    }
}

/// A run id as the dashboard shows it: its first 8 characters.
fn short(id: &Uuid) -> String {
    id.to_string()[..8].to_owned()
}
