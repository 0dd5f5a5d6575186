//! One execution: steps start as soon as the steps they depend on have finished, up to the
//! pipeline's `max_parallel`; pause stops new steps from starting, cancel aborts the running
//! ones; the first step that fails for good ends the run.

use std::{collections::HashMap, sync::Arc, time::Instant};

use app::models::{
    EventBody, PipelineCompleted, PipelineError, PipelineStarted, RunTransition, Totals,
};
use chrono::Utc;
use pipeline::{Pipeline, Step};
use providers::Registry;
use serde_json::{json, Map, Value};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::db::storable;

use super::{
    step::{self, Outcome},
    unknown_provider, Definition, Engine, RunControl,
};

/// A run's inputs, env and overrides, checked against its pipeline.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub inputs: Map<String, Value>,
    pub env: Map<String, Value>,
    pub provider: Option<String>,
    pub model: Option<String>,
}

impl Prepared {
    /// Applies defaults and rejects what the pipeline does not declare, with a message that
    /// lists what it does.
    pub fn new(
        pipeline: &Pipeline,
        given_inputs: &Map<String, Value>,
        given_env: &Map<String, Value>,
        provider: Option<&str>,
        model: Option<&str>,
        providers: &Registry,
    ) -> Result<Self, String> {
        let declared = |names: Vec<&str>| {
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        for name in given_inputs.keys() {
            if !pipeline.inputs.iter().any(|(n, _)| n == name) {
                return Err(format!(
                    "unknown input `{name}`; pipeline `{}` declares: {}",
                    pipeline.name,
                    declared(pipeline.inputs.iter().map(|(n, _)| n.as_str()).collect())
                ));
            }
        }
        // The store cannot hold a NUL: refused here, before anything is published.
        for (kind, given) in [("inputs", given_inputs), ("env", given_env)] {
            for (name, value) in given {
                storable::check_value(value, &format!("{kind}.{name}"))
                    .map_err(|refused| format!("{}: {}", refused.path, refused.message))?;
            }
        }
        let mut inputs = Map::new();
        for (name, spec) in &pipeline.inputs {
            let value = match (given_inputs.get(name), &spec.default) {
                (Some(value), _) => value.clone(),
                (None, Some(default)) => default.clone(),
                (None, None) => {
                    return Err(format!(
                        "input `{name}` is required by pipeline `{}` and has no default",
                        pipeline.name
                    ))
                }
            };
            inputs.insert(name.clone(), value);
        }
        for name in given_env.keys() {
            if !pipeline.env.iter().any(|(n, _)| n == name) {
                return Err(format!(
                    "unknown env value `{name}`; pipeline `{}` declares: {}",
                    pipeline.name,
                    declared(pipeline.env.iter().map(|(n, _)| n.as_str()).collect())
                ));
            }
        }
        let mut env = Map::new();
        for (name, default) in &pipeline.env {
            let value = match given_env.get(name) {
                Some(Value::String(s)) => Value::String(s.clone()),
                Some(other @ (Value::Number(_) | Value::Bool(_))) => {
                    Value::String(other.to_string())
                }
                Some(_) => return Err(format!("env value `{name}` must be a string")),
                None => Value::String(default.clone()),
            };
            env.insert(name.clone(), value);
        }
        if let Some(provider) = provider {
            if providers.get(provider).is_none() {
                return Err(unknown_provider(provider, providers));
            }
        }
        Ok(Self {
            inputs,
            env,
            provider: provider.map(str::to_owned),
            model: model.map(str::to_owned),
        })
    }

    /// The step as this run executes it (overrides applied).
    pub fn resolve_step(&self, step: &Step) -> Step {
        let mut step = step.clone();
        if let Some(provider) = &self.provider {
            step.provider = provider.clone();
        }
        if let Some(model) = &self.model {
            step.model = model.clone();
        }
        step
    }

    /// The templates' context: inputs by bare name and under `inputs`, `env`, and the outputs
    /// of the steps finished so far under `steps.<name>.output`.
    pub fn context(&self, outputs: &HashMap<String, String>) -> Value {
        let mut context = self.inputs.clone();
        context.insert("inputs".into(), Value::Object(self.inputs.clone()));
        context.insert("env".into(), Value::Object(self.env.clone()));
        let steps: Map<String, Value> = outputs
            .iter()
            .map(|(name, output)| (name.clone(), json!({ "output": output })))
            .collect();
        context.insert("steps".into(), Value::Object(steps));
        Value::Object(context)
    }

    /// What a re-run needs, stored with the execution.
    pub fn config(&self, definition: &Definition) -> Value {
        json!({
            "version": definition.version,
            "env": self.env,
            "provider": self.provider,
            "model": self.model,
            "max_parallel": definition.pipeline.max_parallel,
            "steps": definition.pipeline.steps.iter().map(|s| &s.name).collect::<Vec<_>>(),
        })
    }
}

pub(super) async fn execute(
    engine: &Engine,
    execution_id: Uuid,
    definition: Arc<Definition>,
    prepared: Prepared,
    control: &RunControl,
    stored: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let started = Instant::now();
    let pipeline = &definition.pipeline;
    let announced = engine
        .inner
        .bus
        .publish_durable(EventBody::PipelineStarted(PipelineStarted {
            execution_id,
            pipeline: definition.name.clone(),
            config: prepared.config(&definition),
            inputs: Value::Object(prepared.inputs.clone()),
            started_at: Utc::now(),
            version: Some(definition.version),
            batch_id: control.batch_id,
        }));
    if let Err(error) = announced.await {
        tracing::warn!("the start of run {execution_id} was not stored: {error}");
    }
    if let Some(stored) = stored {
        let _ = stored.send(());
    }

    // Steps of this run are cancelled together: by the user, by a failed sibling, or at shutdown.
    let steps_cancel = engine.inner.stopping.child_token();
    let mut outputs: HashMap<String, String> = HashMap::new();
    let mut pending: Vec<&Step> = pipeline.steps.iter().collect();
    let mut running: JoinSet<(String, Outcome)> = JoinSet::new();
    let mut totals = Totals::default();
    let mut failure: Option<(String, String)> = None;
    let mut paused = control.paused.subscribe();
    let max_parallel = pipeline.max_parallel.max(1) as usize;

    loop {
        let stop_starting = *paused.borrow_and_update()
            || failure.is_some()
            || control.cancel.is_cancelled()
            || steps_cancel.is_cancelled();
        if !stop_starting {
            while running.len() < max_parallel {
                let Some(index) = pending
                    .iter()
                    .position(|s| s.depends_on.iter().all(|d| outputs.contains_key(d)))
                else {
                    break;
                };
                let step = pending.remove(index);
                let job = step::Job {
                    execution_id,
                    step: prepared.resolve_step(step),
                    context: prepared.context(&outputs),
                    first_attempt: 1,
                    replay_of: None,
                    cancel: steps_cancel.child_token(),
                };
                let engine = engine.clone();
                let name = step.name.clone();
                running.spawn(async move { (name, step::run(&engine, job).await) });
            }
        }
        if running.is_empty() && (pending.is_empty() || failure.is_some()) {
            break;
        }
        tokio::select! {
            Some(joined) = running.join_next(), if !running.is_empty() => {
                let (name, outcome) = match joined {
                    Ok(result) => result,
                    Err(error) => {
                        // A step task that panicked must still end the run, not hang it.
                        tracing::error!("step task of {execution_id} failed: {error}");
                        failure.get_or_insert(("?".into(), format!("internal error: {error}")));
                        steps_cancel.cancel();
                        continue;
                    }
                };
                match outcome {
                    Outcome::Completed { output, tokens, cost_usd } => {
                        totals.tokens += u64::from(tokens);
                        totals.cost_usd += cost_usd;
                        outputs.insert(name, output);
                    }
                    Outcome::Failed { error, tokens, cost_usd } => {
                        totals.tokens += u64::from(tokens);
                        totals.cost_usd += cost_usd;
                        if failure.is_none() {
                            failure = Some((name, error));
                            steps_cancel.cancel();
                        }
                    }
                    Outcome::Cancelled => {}
                }
            }
            changed = paused.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = control.cancel.cancelled(), if !steps_cancel.is_cancelled() => {
                steps_cancel.cancel();
                // Nothing else will start; wait for the running steps to report.
                pending.clear();
            }
            () = engine.inner.stopping.cancelled(), if running.is_empty() => {
                // Paused with nothing running when the server stops.
                break;
            }
        }
    }

    if engine.inner.stopping.is_cancelled() {
        // Shutdown: the run is marked interrupted once the bus has flushed.
        return;
    }
    totals.duration_ms = started.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
    let body = if control.cancel.is_cancelled() {
        EventBody::PipelineCancelled(RunTransition {
            execution_id,
            at: Utc::now(),
            reason: control.reason(),
        })
    } else if let Some((step, error)) = failure {
        EventBody::PipelineError(PipelineError {
            execution_id,
            error: format!("step `{step}` failed: {error}"),
            step: Some(step),
        })
    } else {
        let results: Map<String, Value> = pipeline
            .steps
            .iter()
            .filter_map(|s| {
                outputs
                    .get(&s.name)
                    .map(|o| (s.name.clone(), Value::String(o.clone())))
            })
            .collect();
        EventBody::PipelineCompleted(PipelineCompleted {
            execution_id,
            results: Value::Object(results),
            totals,
        })
    };
    // Final events are on disk before the run counts as over, so a read right after sees them.
    control
        .finishing
        .store(true, std::sync::atomic::Ordering::Release);
    if let Err(error) = engine.inner.bus.publish_durable(body).await {
        tracing::warn!("the end of run {execution_id} was not stored: {error}");
    }
}
