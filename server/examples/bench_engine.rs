//! Engine overhead: 1,000 concurrent executions of a 5-step pipeline on the simulated provider at
//! zero latency, in process, with pipescope's own PostgreSQL in a temporary folder. Prints
//! executions/s, CPU per step with and without the provider's own work, and peak RSS;
//! BENCHMARKS.md records the figures.
//!
//! ```sh
//! cargo run --release -p server --example bench_engine [-- --runs 1000]
//! ```

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use app::models::{DatabaseMode, EventBody};
use futures::{stream::FuturesUnordered, StreamExt};
use providers::{ChatRequest, PriceTable, Provider, ProviderConfig, Registry, SimulatedConfig};
use server::{
    bus::{Filter, Next},
    config::Config,
    db::Database,
    engine::{EngineConfig, StartRequest},
    state::{AppState, BackboneSettings},
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const STEPS: usize = 5;
const MAX_TOKENS: u32 = 64;

const PIPELINE: &str = r#"
name: bench
defaults: { provider: instant, model: sim-small, max_tokens: 64 }
inputs:
  topic: { default: "load testing" }
steps:
  - { name: outline, prompt: "Outline {{ topic }}." }
  - { name: facts, prompt: "List facts about {{ topic }}." }
  - { name: draft, prompt: "Draft from {{ steps.outline.output }} and {{ steps.facts.output }}" }
  - { name: critique, prompt: "Critique: {{ steps.draft.output }}" }
  - { name: final, prompt: "Revise {{ steps.draft.output }} given {{ steps.critique.output }}" }
"#;

fn instant() -> SimulatedConfig {
    SimulatedConfig {
        tokens_per_second: 0.0,
        first_token_ms: 0,
        ..SimulatedConfig::default()
    }
}

/// User plus system CPU time of this process.
fn cpu_time() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
    match usage {
        Ok(usage) => {
            let micros = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
            };
            micros(usage.user_time()) + micros(usage.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU the simulated provider itself spends on `calls` requests, streamed to the end.
async fn provider_only(calls: usize) -> Result<Duration, Error> {
    let provider = providers::simulated::Simulated::new(instant())?;
    let before = cpu_time();
    let mut pending = FuturesUnordered::new();
    for i in 0..calls {
        let provider = &provider;
        pending.push(async move {
            let request = ChatRequest {
                model: "sim-small".into(),
                system: None,
                prompt: format!("Outline load testing, part {i}."),
                max_tokens: MAX_TOKENS,
                temperature: 0.7,
                seed: i as u64,
            };
            if let Ok(mut stream) = provider.stream(request).await {
                while stream.next().await.is_some() {}
            }
        });
    }
    while pending.next().await.is_some() {}
    Ok(cpu_time() - before)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    tracing_subscriber::fmt().with_env_filter("warn").init();
    providers::tokens::warm_up();

    let data = tempfile::tempdir()?;
    let mut database = Database::open(None, data.path(), None).await?;
    let mut configured = BTreeMap::new();
    configured.insert("instant".to_owned(), ProviderConfig::Simulated(instant()));
    let engine = EngineConfig {
        providers: Registry::new(&configured, &|_| None)?,
        prices: PriceTable::new(Vec::new()),
        // Every run at once: this measures the engine, not its limit.
        max_running: runs.max(1) + 1,
    };
    let config = <Config as clap::Parser>::parse_from(["pipescope"]);
    let state = AppState::start(
        server::leptos_options(&config),
        database.pool.clone(),
        DatabaseMode::Embedded,
        BackboneSettings::default(),
        engine,
    )
    .await;
    let (mut events, _) = state.bus.subscribe(Filter::default(), None);
    // Saves the definition once; the runs then start it by name.
    state
        .engine
        .start(StartRequest {
            yaml: Some(PIPELINE.into()),
            ..StartRequest::default()
        })
        .await?;
    let mut finished = 0;
    while finished < 1 {
        if let Next::Event(e) = events.next().await {
            finished += usize::from(e.body.is_final());
        }
    }

    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut starts = FuturesUnordered::new();
    for _ in 0..runs {
        let engine = state.engine.clone();
        starts.push(async move {
            engine
                .start(StartRequest {
                    pipeline: Some("bench".into()),
                    ..StartRequest::default()
                })
                .await
        });
    }
    let mut completed = 0usize;
    let mut failed = 0usize;
    let mut delivered = 0u64;
    let mut lagged = 0u64;
    let mut starting = true;
    while completed + failed < runs {
        tokio::select! {
            next = starts.next(), if starting => match next {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
                None => starting = false,
            },
            next = events.next() => match next {
                Next::Event(e) => {
                    delivered += 1;
                    match &e.body {
                        EventBody::PipelineCompleted(_) => completed += 1,
                        EventBody::PipelineError(_) | EventBody::PipelineCancelled(_) => failed += 1,
                        _ => {}
                    }
                }
                Next::Lagged(n) => lagged += n,
                Next::Closed => break,
            },
        }
    }
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    let rss = peak_rss_mb();
    let steps = (runs * STEPS) as f64;
    let provider_cpu = provider_only(runs * STEPS).await?;

    println!("engine: {runs} concurrent executions x {STEPS} steps, simulated provider at zero latency, max_tokens {MAX_TOKENS}");
    println!(
        "  completed {completed}, failed {failed}, events delivered {delivered}, lagged {lagged}"
    );
    println!(
        "  wall {:.2} s -> {:.0} executions/s, {:.0} steps/s",
        wall.as_secs_f64(),
        runs as f64 / wall.as_secs_f64(),
        steps / wall.as_secs_f64()
    );
    println!(
        "  CPU {:.2} s -> {:.0} us per step in all; the provider alone {:.0} us per step; engine overhead {:.0} us per step",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / steps,
        provider_cpu.as_secs_f64() * 1e6 / steps,
        (cpu.saturating_sub(provider_cpu)).as_secs_f64() * 1e6 / steps
    );
    println!("  peak RSS {rss:.0} MB");

    state.shut_down().await;
    database.close().await;
    Ok(())
}
