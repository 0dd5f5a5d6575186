//! The offline provider: deterministic text, pace, limits, failure modes, usage.

mod common;

use std::time::Duration;

use common::{call, drain};
use futures::StreamExt;
use providers::{tokens, ChatRequest, Delta, ErrorKind, Provider, Simulated, SimulatedConfig};
use tokio::time::Instant;

fn fast() -> SimulatedConfig {
    SimulatedConfig {
        tokens_per_second: 0.0,
        first_token_ms: 0,
        ..SimulatedConfig::default()
    }
}

fn sim(config: SimulatedConfig) -> Simulated {
    Simulated::new(config).expect("valid config")
}

fn request(seed: u64) -> ChatRequest {
    ChatRequest {
        model: "sim-small".to_owned(),
        system: Some("You write concise technical briefs.".to_owned()),
        prompt: "Write a five-point outline about event sourcing.".to_owned(),
        max_tokens: 1000,
        temperature: 0.2,
        seed,
    }
}

#[tokio::test]
async fn same_inputs_same_text() {
    let first = call(&sim(fast()), request(1)).await;
    let again = call(&sim(fast()), request(1)).await;

    assert_eq!(first.error, None);
    assert!(!first.chunks.is_empty());
    assert_eq!(first.chunks, again.chunks);
    assert_eq!(first.usage, again.usage);
}

#[tokio::test]
async fn different_seeds_different_text() {
    let base = call(&sim(fast()), request(1)).await.text();

    let other_request_seed = call(&sim(fast()), request(2)).await.text();
    let other_config_seed = call(&sim(SimulatedConfig { seed: 99, ..fast() }), request(1))
        .await
        .text();
    let mut other_prompt = request(1);
    other_prompt.prompt = "Critique this draft about caching.".to_owned();
    let other_prompt = call(&sim(fast()), other_prompt).await.text();

    assert_ne!(base, other_request_seed);
    assert_ne!(base, other_config_seed);
    assert_ne!(base, other_prompt);
}

#[tokio::test]
async fn text_is_english_about_the_prompt() {
    let text = call(&sim(fast()), request(3)).await.text();

    // An outline was asked for: numbered points, mentioning the topic.
    assert!(text.starts_with("1. "), "{text}");
    assert!(text.contains("\n2. "), "{text}");
    assert!(text.to_lowercase().contains("event") || text.to_lowercase().contains("sourcing"));
    assert!(text.ends_with('.'), "{text}");
}

#[tokio::test]
async fn length_varies_within_bounds() {
    let mut lengths = Vec::new();
    for seed in 0..30 {
        let outcome = call(&sim(fast()), request(seed)).await;
        let usage = outcome.usage.expect("usage at the end");
        assert_eq!(usage.completion_tokens as usize, outcome.chunks.len());
        lengths.push(outcome.chunks.len());
    }
    // At least the 40 pieces aimed for, at most the 250 plus the sentence that crossed it.
    assert!(
        lengths.iter().all(|&n| (40..=300).contains(&n)),
        "{lengths:?}"
    );
    let min = lengths.iter().min().copied().unwrap_or_default();
    let max = lengths.iter().max().copied().unwrap_or_default();
    assert!(max - min > 50, "lengths hardly vary: {lengths:?}");
}

#[tokio::test]
async fn never_more_than_max_tokens() {
    let mut req = request(4);
    req.max_tokens = 7;

    let outcome = call(&sim(fast()), req).await;

    assert_eq!(outcome.chunks.len(), 7);
    assert_eq!(outcome.usage.map(|u| u.completion_tokens), Some(7));
}

#[tokio::test]
async fn usage_counts_system_and_prompt() {
    let req = request(5);
    let expected =
        tokens::count(req.system.as_deref().unwrap_or_default()) + tokens::count(&req.prompt);

    let usage = call(&sim(fast()), req).await.usage.expect("usage");

    assert_eq!(usage.prompt_tokens, expected);
    assert!(usage.prompt_tokens > 10);
}

#[tokio::test(start_paused = true)]
async fn pace_is_honoured() {
    let config = SimulatedConfig {
        tokens_per_second: 10.0,
        first_token_ms: 500,
        ..SimulatedConfig::default()
    };
    let mut req = request(6);
    req.max_tokens = 20;
    let started = Instant::now();
    let mut stream = sim(config).stream(req).await.expect("starts");

    let mut arrivals = Vec::new();
    while let Some(item) = stream.next().await {
        if let Delta::Text(_) = item.expect("no failure configured") {
            arrivals.push(started.elapsed());
        }
    }

    assert_eq!(arrivals.len(), 20);
    assert_eq!(arrivals[0], Duration::from_millis(500));
    assert_eq!(arrivals[1], Duration::from_millis(600));
    assert_eq!(arrivals[19], Duration::from_millis(500 + 19 * 100));
}

#[tokio::test]
async fn rate_limit_refuses_the_call() {
    let config = SimulatedConfig {
        rate_limit_rate: 1.0,
        retry_after_ms: 1500,
        ..fast()
    };

    let error = sim(config).stream(request(7)).await.err().expect("refused");

    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_millis(1500)));
}

#[tokio::test]
async fn error_comes_part_way() {
    let config = SimulatedConfig {
        error_rate: 1.0,
        ..fast()
    };

    let outcome = call(&sim(config), request(8)).await;

    assert!(!outcome.chunks.is_empty(), "some text before the error");
    assert_eq!(outcome.usage, None);
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Server);
    assert!(error.message.contains("simulated"), "{}", error.message);
}

#[tokio::test(start_paused = true)]
async fn stall_sends_some_text_then_nothing() {
    let config = SimulatedConfig {
        stall_rate: 1.0,
        ..fast()
    };
    let stream = sim(config).stream(request(9)).await.expect("starts");

    // Paused time jumps straight to the deadline once the stream has nothing left to do.
    let result = tokio::time::timeout(Duration::from_secs(3600), drain(stream)).await;

    assert!(result.is_err(), "the stream never ends: {result:?}");
}

#[tokio::test(start_paused = true)]
async fn stall_yields_text_first() {
    let config = SimulatedConfig {
        stall_rate: 1.0,
        ..fast()
    };
    let mut stream = sim(config).stream(request(9)).await.expect("starts");

    let first = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;

    assert!(matches!(first, Ok(Some(Ok(Delta::Text(_))))), "{first:?}");
}

#[tokio::test]
async fn failure_rates_pick_deterministically() {
    let config = SimulatedConfig {
        error_rate: 0.5,
        ..fast()
    };
    let mut failed = Vec::new();
    for seed in 0..200 {
        failed.push(
            call(&sim(config.clone()), request(seed))
                .await
                .error
                .is_some(),
        );
    }
    let again: Vec<bool> = {
        let mut again = Vec::new();
        for seed in 0..200 {
            again.push(
                call(&sim(config.clone()), request(seed))
                    .await
                    .error
                    .is_some(),
            );
        }
        again
    };

    assert_eq!(failed, again);
    let count = failed.iter().filter(|f| **f).count();
    assert!(
        (70..=130).contains(&count),
        "{count} of 200 failed at rate 0.5"
    );
}

#[test]
fn rejects_rates_outside_zero_to_one() {
    let error = Simulated::new(SimulatedConfig {
        error_rate: 1.5,
        ..SimulatedConfig::default()
    })
    .expect_err("invalid");
    assert!(error.contains("error_rate"), "{error}");
}
