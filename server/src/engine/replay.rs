//! Re-running a finished run and replaying one of its steps: both start from what the store
//! recorded of the run (its definition version, inputs, env and overrides).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{step, unknown_provider, Engine, EngineError, StartRequest, Started};
use crate::db::{
    executions::{self, RunRecord},
    projection::Origin,
};

/// A step replay: the same step of a finished run, with an edited prompt or another model.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"prompt": "Shorter, please:\n{{ steps.outline.output }}", "model": "sim-large"}))]
pub struct ReplayRequest {
    /// The prompt template to use instead of the step's (plain text is a template too).
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// The attempt to replay; the latest when omitted.
    #[serde(default)]
    pub attempt: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Replayed {
    pub execution_id: Uuid,
    pub step: String,
    pub attempt: u32,
    pub replay_of: u32,
}

impl Engine {
    /// Starts a new run with the same definition version, inputs, env and overrides as
    /// `execution_id` (an interrupted, failed or any finished run).
    pub async fn rerun(&self, execution_id: Uuid) -> Result<Started, EngineError> {
        let past = executions::run_record(&self.inner.pool, execution_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no execution {execution_id}")))?;
        self.finished(
            execution_id,
            "the run is still in progress; cancel it first",
        )
        .await?;
        let request = start_request(&past)?;
        self.start(request).await
    }

    /// Replays one step of a finished run as a new attempt linked to the one it replays.
    pub async fn replay(
        &self,
        execution_id: Uuid,
        step_name: &str,
        request: ReplayRequest,
    ) -> Result<Replayed, EngineError> {
        self.finished(
            execution_id,
            "the run is still in progress; replay its steps once it has finished",
        )
        .await?;
        let past = executions::run_record(&self.inner.pool, execution_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no execution {execution_id}")))?;
        let start = start_request(&past)?;
        let definition = self.resolve(&start).await?;
        let prepared = self.prepare(&definition, &start)?;
        let step = definition
            .pipeline
            .steps
            .iter()
            .find(|s| s.name == step_name)
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "pipeline `{}` has no step `{step_name}`",
                    definition.name
                ))
            })?;
        let attempts = executions::step_attempts(&self.inner.pool, execution_id, step_name).await?;
        let latest = attempts.iter().map(|a| a.number()).max().ok_or_else(|| {
            EngineError::Conflict(format!(
                "step `{step_name}` never ran in this execution, so there is nothing to replay"
            ))
        })?;
        let replay_of = request.attempt.unwrap_or(latest);
        if !attempts.iter().any(|a| a.number() == replay_of) {
            return Err(EngineError::NotFound(format!(
                "step `{step_name}` has no attempt {replay_of} (latest is {latest})"
            )));
        }
        let outputs = executions::step_outputs(&self.inner.pool, execution_id).await?;
        let mut step = prepared.resolve_step(step);
        if let Some(provider) = &request.provider {
            if self.inner.providers.get(provider).is_none() {
                return Err(EngineError::BadRequest(unknown_provider(
                    provider,
                    &self.inner.providers,
                )));
            }
            step.provider = provider.clone();
        }
        if let Some(model) = &request.model {
            step.model = model.clone();
        }
        if let Some(prompt) = request.prompt {
            step.prompt = prompt;
        }
        if let Some(system) = request.system {
            step.system = Some(system).filter(|s| !s.is_empty());
        }
        // Replays are single tries: the user is watching and decides what to do next.
        step.retry.attempts = 1;
        let attempt = latest + 1;
        let context = prepared.context(&outputs);
        let job = step::Job {
            execution_id,
            step,
            context,
            first_attempt: attempt,
            replay_of: Some(replay_of),
            cancel: self.inner.stopping.child_token(),
        };
        let engine = self.clone();
        self.inner.tasks.spawn(async move {
            step::run(&engine, job).await;
        });
        Ok(Replayed {
            execution_id,
            step: step_name.to_owned(),
            attempt,
            replay_of,
        })
    }
}

/// The request that starts a recorded run again (same definition version, inputs, env and
/// overrides).
fn start_request(record: &RunRecord) -> Result<StartRequest, EngineError> {
    if record.source != Origin::Engine {
        return Err(EngineError::Conflict(
            "this run was reported through the ingest API; only runs started by pipescope \
             can be re-run or replayed"
                .into(),
        ));
    }
    let text = |key: &str| {
        record
            .config
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(StartRequest {
        pipeline: Some(record.pipeline_name.clone()),
        version: record.pipeline_version.and_then(|v| u32::try_from(v).ok()),
        yaml: None,
        save: false,
        inputs: record.inputs.as_object().cloned().unwrap_or_default(),
        env: record
            .config
            .get("env")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        provider: text("provider"),
        model: text("model"),
    })
}
