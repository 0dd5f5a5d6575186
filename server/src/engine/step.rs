//! One step: each attempt renders the templates, counts the prompt's tokens, sends it, streams
//! the response as `response:streaming` chunks and reports usage, time to first token and cost.
//! Retryable failures (rate limits, server errors, dropped streams, timeouts) are retried with
//! exponential backoff, honouring the provider's `retry-after`.

use std::{
    hash::{Hash, Hasher},
    time::{Duration, Instant},
};

use app::models::{
    EventBody, LogLevel, PromptSent, ResponseReceived, ResponseStreaming, StepCompleted,
    StepProgress, StepStarted, StepStatus, Usage as EventUsage,
};
use futures::StreamExt;
use pipeline::Step;
use providers::{ChatRequest, Delta, ProviderError, Usage};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Engine;

/// `step:progress` at most this often per step.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

pub(super) struct Job {
    pub execution_id: Uuid,
    pub step: Step,
    pub context: Value,
    pub first_attempt: u32,
    pub replay_of: Option<u32>,
    pub cancel: CancellationToken,
}

/// How a step ended, for its run.
#[derive(Debug)]
pub(super) enum Outcome {
    Completed {
        output: String,
        tokens: u32,
        cost_usd: f64,
    },
    Failed {
        error: String,
        tokens: u32,
        cost_usd: f64,
    },
    Cancelled,
}

/// Why one attempt did not complete.
struct AttemptError {
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
    /// Tokens and cost spent before it failed.
    tokens: u32,
    cost_usd: f64,
}

impl AttemptError {
    fn fatal(message: String) -> Self {
        Self {
            message,
            retryable: false,
            retry_after: None,
            tokens: 0,
            cost_usd: 0.0,
        }
    }
}

enum Attempt {
    Done {
        output: String,
        tokens: u32,
        cost_usd: f64,
    },
    Failed(AttemptError),
    Cancelled,
}

pub(super) async fn run(engine: &Engine, job: Job) -> Outcome {
    let attempts = job.step.retry.attempts.max(1);
    let mut spent_tokens: u32 = 0;
    let mut spent_cost = 0.0;
    for n in 0..attempts {
        let attempt = job.first_attempt + n;
        let error = match run_attempt(engine, &job, attempt).await {
            Attempt::Done {
                output,
                tokens,
                cost_usd,
            } => {
                return Outcome::Completed {
                    output,
                    tokens: spent_tokens.saturating_add(tokens),
                    cost_usd: spent_cost + cost_usd,
                }
            }
            Attempt::Cancelled => return Outcome::Cancelled,
            Attempt::Failed(error) => error,
        };
        spent_tokens = spent_tokens.saturating_add(error.tokens);
        spent_cost += error.cost_usd;
        let last = n + 1 == attempts;
        if !error.retryable || last {
            return Outcome::Failed {
                error: error.message,
                tokens: spent_tokens,
                cost_usd: spent_cost,
            };
        }
        let wait = backoff(&job.step, n, error.retry_after);
        engine.log(
            LogLevel::Warn,
            format!(
                "attempt {attempt} of {attempts} failed: {}; retrying in {} ms",
                error.message,
                wait.as_millis()
            ),
            job.execution_id,
            Some(&job.step.name),
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = job.cancel.cancelled() => return Outcome::Cancelled,
        }
    }
    // attempts >= 1, so the loop always returns; this keeps the compiler honest without a panic.
    Outcome::Failed {
        error: "no attempt was made".into(),
        tokens: spent_tokens,
        cost_usd: spent_cost,
    }
}

/// `backoff_ms × 2^n`, capped, and never shorter than what the provider asked for.
fn backoff(step: &Step, retry: u32, retry_after: Option<Duration>) -> Duration {
    let policy = step.retry;
    let exponential = policy
        .backoff_ms
        .saturating_mul(1u64 << retry.min(20))
        .min(policy.max_backoff_ms);
    Duration::from_millis(exponential).max(retry_after.unwrap_or_default())
}

async fn run_attempt(engine: &Engine, job: &Job, attempt: u32) -> Attempt {
    let started = Instant::now();
    let step = &job.step;
    let execution_id = job.execution_id;
    engine.publish(EventBody::StepStarted(StepStarted {
        execution_id,
        step: step.name.clone(),
        provider: step.provider.clone(),
        model: step.model.clone(),
        attempt,
        token_budget: step.token_budget,
        replay_of: job.replay_of,
        config: json!({
            "max_tokens": step.max_tokens,
            // f32 → f64 without the binary noise (0.7, not 0.699999988).
            "temperature": (f64::from(step.temperature) * 1000.0).round() / 1000.0,
            "timeout_ms": step.timeout_ms,
            "retry": step.retry,
            "depends_on": step.depends_on,
        }),
    }));
    let result = tokio::select! {
        result = call(engine, job, attempt, started) => result,
        () = job.cancel.cancelled() => Attempt::Cancelled,
    };
    let duration_ms = started.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
    let completed = |status, tokens, cost_usd, error| {
        EventBody::StepCompleted(StepCompleted {
            execution_id,
            step: step.name.clone(),
            duration_ms,
            tokens,
            cost_usd,
            status,
            error,
        })
    };
    match &result {
        Attempt::Done {
            tokens, cost_usd, ..
        } => engine.publish(completed(StepStatus::Completed, *tokens, *cost_usd, None)),
        Attempt::Failed(error) => {
            engine.publish(completed(
                StepStatus::Failed,
                error.tokens,
                error.cost_usd,
                Some(error.message.clone()),
            ));
            engine.log(
                LogLevel::Error,
                format!("attempt {attempt} failed: {}", error.message),
                execution_id,
                Some(&step.name),
            );
        }
        // At shutdown the run is marked interrupted instead.
        Attempt::Cancelled if !engine.inner.stopping.is_cancelled() => engine.publish(completed(
            StepStatus::Cancelled,
            0,
            0.0,
            Some("cancelled".into()),
        )),
        Attempt::Cancelled => {}
    }
    result
}

/// Renders, checks the budget, sends and streams.
async fn call(engine: &Engine, job: &Job, attempt: u32, started: Instant) -> Attempt {
    let step = &job.step;
    let execution_id = job.execution_id;
    let Some(provider) = engine.inner.providers.get(&step.provider) else {
        return Attempt::Failed(AttemptError::fatal(format!(
            "provider `{}` is not configured on this server",
            step.provider
        )));
    };
    let Rendered {
        prompt,
        system,
        variables,
        prompt_tokens,
        max_tokens,
    } = match render(step, &job.context) {
        Ok(rendered) => rendered,
        Err(message) => return Attempt::Failed(AttemptError::fatal(message)),
    };
    engine.publish(EventBody::PromptSent(PromptSent {
        execution_id,
        step: step.name.clone(),
        prompt: prompt.clone(),
        system: system.clone(),
        template: step.prompt.clone(),
        variables: Value::Object(variables),
        token_count: prompt_tokens,
    }));

    let request = ChatRequest {
        model: step.model.clone(),
        system,
        prompt,
        max_tokens,
        temperature: step.temperature,
        seed: seed(execution_id, &step.name, attempt),
    };
    let deadline = tokio::time::Instant::from_std(started) + Duration::from_millis(step.timeout_ms);
    let timed_out = || {
        engine.inner.calls.failed(&step.provider);
        Attempt::Failed(AttemptError {
            message: format!(
                "no complete response within the step's timeout of {} ms",
                step.timeout_ms
            ),
            retryable: true,
            retry_after: None,
            tokens: 0,
            cost_usd: 0.0,
        })
    };
    engine.inner.calls.sent(&step.provider);
    let stream = tokio::select! {
        opened = provider.stream(request) => match opened {
            Ok(stream) => stream,
            Err(error) => {
                engine.inner.calls.failed(&step.provider);
                return Attempt::Failed(provider_error(&step.provider, error));
            }
        },
        () = tokio::time::sleep_until(deadline) => return timed_out(),
    };
    // Deltas that are already waiting are taken together and sent as one chunk: a provider
    // streaming faster than anyone reads (a local model, a burst after a network stall) costs
    // one event per burst, not one per token, while a steady stream still goes out token by
    // token the moment each arrives.
    let mut stream = stream.ready_chunks(256);

    let mut response = String::new();
    let mut nul_replaced = false;
    let mut completion_tokens: u32 = 0;
    let mut reported: Option<Usage> = None;
    let mut ttft_ms: Option<u32> = None;
    let mut last_progress = Instant::now();
    loop {
        let batch = tokio::select! {
            batch = stream.next() => batch,
            () = tokio::time::sleep_until(deadline) => return timed_out(),
        };
        let Some(batch) = batch else { break };
        let mut chunk = String::new();
        let mut failure = None;
        for delta in batch {
            match delta {
                Ok(Delta::Text(text)) => chunk.push_str(&text),
                Ok(Delta::Usage(usage)) => reported = Some(usage),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if !chunk.is_empty() {
            // What streams live, what later steps read and what is stored are the same text.
            if super::replace_nul(&mut chunk) && !nul_replaced {
                nul_replaced = true;
                engine.log(
                    LogLevel::Warn,
                    format!(
                        "the response of step `{}` contained NUL characters, which cannot be \
                         stored; each was replaced with U+FFFD",
                        step.name
                    ),
                    execution_id,
                    Some(&step.name),
                );
            }
            ttft_ms.get_or_insert_with(|| {
                started.elapsed().as_millis().try_into().unwrap_or(u32::MAX)
            });
            completion_tokens = completion_tokens.saturating_add(providers::tokens::count(&chunk));
            response.push_str(&chunk);
            engine.publish(EventBody::ResponseStreaming(ResponseStreaming {
                execution_id,
                step: step.name.clone(),
                chunk,
            }));
            // Providers stop at max_tokens themselves; this stops one that does not. The
            // slack covers chunk-by-chunk counting differing from the provider's tokenizer.
            // Saturating: a max_tokens near u32::MAX must not wrap the limit round to a small one.
            let limit = max_tokens.saturating_add(max_tokens / 10).saturating_add(8);
            if completion_tokens > limit && step.token_budget.is_some() {
                let usage = Usage {
                    prompt_tokens,
                    completion_tokens,
                };
                return Attempt::Failed(AttemptError {
                    message: format!(
                        "the response passed the step's token_budget of {} tokens \
                         ({prompt_tokens} prompt + {completion_tokens} completion so far); \
                         the stream was stopped",
                        step.token_budget.unwrap_or_default()
                    ),
                    retryable: false,
                    retry_after: None,
                    tokens: prompt_tokens.saturating_add(completion_tokens),
                    cost_usd: engine.cost(&step.provider, &step.model, usage),
                });
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                engine.publish(EventBody::StepProgress(StepProgress {
                    execution_id,
                    step: step.name.clone(),
                    tokens_used: prompt_tokens.saturating_add(completion_tokens),
                }));
            }
        }
        if let Some(error) = failure {
            engine.inner.calls.failed(&step.provider);
            return Attempt::Failed(provider_error(&step.provider, error));
        }
    }

    // Usage as the provider reported it; our own count when it reported none.
    let usage = reported.unwrap_or(Usage {
        prompt_tokens,
        completion_tokens,
    });
    // What a provider reports is not trusted to fit: saturate rather than wrap or panic.
    let total = usage.prompt_tokens.saturating_add(usage.completion_tokens);
    let cost_usd = engine.cost(&step.provider, &step.model, usage);
    engine.publish(EventBody::ResponseReceived(ResponseReceived {
        execution_id,
        step: step.name.clone(),
        response: response.clone(),
        usage: EventUsage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: total,
        },
        ttft_ms,
    }));
    Attempt::Done {
        output: response,
        tokens: total,
        cost_usd,
    }
}

/// A step's templates rendered for one context: what an attempt sends, and what the studio's
/// preview shows.
pub(super) struct Rendered {
    pub prompt: String,
    pub system: Option<String>,
    /// Each variable the templates read, with its value (for the prompt inspector).
    pub variables: Map<String, Value>,
    /// System and prompt together, by the engine's tokenizer.
    pub prompt_tokens: u32,
    /// The completion's limit: `max_tokens`, lowered to what the token budget leaves.
    pub max_tokens: u32,
}

/// Renders the step's system prompt and prompt with `context` and counts them against its
/// token budget; the error says which template failed and where, or by how much the prompt
/// overruns the budget.
pub(super) fn render(step: &Step, context: &Value) -> Result<Rendered, String> {
    let prompt = pipeline::template::render(&step.prompt, context)
        .map_err(|error| format!("prompt template: {error}"))?;
    let system = step
        .system
        .as_deref()
        .map(|s| pipeline::template::render(s, context))
        .transpose()
        .map_err(|error| format!("system template: {error}"))?;
    let mut variables: Map<String, Value> = prompt.variables;
    if let Some(system) = &system {
        variables.extend(system.variables.clone());
    }
    let system = system.map(|s| s.text);
    let prompt_tokens = providers::tokens::count(&prompt.text)
        + system.as_deref().map_or(0, providers::tokens::count);

    // The budget covers prompt and completion; the completion gets what the prompt leaves.
    let mut max_tokens = step.max_tokens;
    if let Some(budget) = step.token_budget {
        if prompt_tokens >= budget {
            return Err(format!(
                "the prompt has {prompt_tokens} tokens, which uses up the step's token_budget of \
                 {budget}; raise token_budget or shorten the prompt"
            ));
        }
        max_tokens = max_tokens.min(budget - prompt_tokens);
    }
    Ok(Rendered {
        prompt: prompt.text,
        system,
        variables,
        prompt_tokens,
        max_tokens,
    })
}

fn provider_error(provider: &str, error: ProviderError) -> AttemptError {
    AttemptError {
        message: format!("{provider}: {}", error.message),
        retryable: error.is_retryable(),
        retry_after: error.retry_after,
        tokens: 0,
        cost_usd: 0.0,
    }
}

/// Varies the simulated provider's text between runs, steps and attempts.
fn seed(execution_id: Uuid, step: &str, attempt: u32) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    execution_id.hash(&mut hasher);
    step.hash(&mut hasher);
    attempt.hash(&mut hasher);
    hasher.finish()
}
