//! Demo mode: the saved example pipelines run on a simulated provider at a steady pace, so a
//! fresh install shows live activity with no API key and no network.

use std::time::Duration;

use super::{Engine, StartRequest};

/// The simulated provider instance demo runs use (a little flaky on purpose, so retries and
/// failures show up too).
pub const PROVIDER: &str = "demo";

#[derive(Debug, Clone, Copy)]
pub struct DemoSettings {
    /// A new run starts this often…
    pub every: Duration,
    /// …unless this many runs are already going.
    pub max_running: usize,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(4),
            max_running: 3,
        }
    }
}

/// The demo's provider: simulated, at a readable pace, with occasional rate limits and errors.
pub fn provider_config() -> providers::ProviderConfig {
    providers::ProviderConfig::Simulated(providers::SimulatedConfig {
        tokens_per_second: 35.0,
        first_token_ms: 350,
        seed: 7,
        error_rate: 0.03,
        rate_limit_rate: 0.05,
        retry_after_ms: 1500,
        stall_rate: 0.0,
    })
}

/// Starts the demo loop over `pipelines` (names of saved definitions), in turn.
pub fn start(engine: Engine, pipelines: Vec<String>, settings: DemoSettings) {
    if pipelines.is_empty() {
        tracing::warn!("demo mode is on but there are no pipelines to run");
        return;
    }
    tracing::info!(
        "demo mode: running {} on the simulated provider",
        pipelines.join(", ")
    );
    let stopping = engine.inner.stopping.clone();
    engine.inner.tasks.clone().spawn(async move {
        let mut ticker = tokio::time::interval(settings.every);
        let mut next = 0usize;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stopping.cancelled() => return,
            }
            if engine.live_runs().len() >= settings.max_running {
                continue;
            }
            let name = &pipelines[next % pipelines.len()];
            next += 1;
            let request = StartRequest {
                pipeline: Some(name.clone()),
                provider: Some(PROVIDER.into()),
                ..StartRequest::default()
            };
            if let Err(error) = engine.start(request).await {
                tracing::warn!("demo run of `{name}` did not start: {error}");
            }
        }
    });
}
