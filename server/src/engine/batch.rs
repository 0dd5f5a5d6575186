//! Batch runs: one pipeline over a list of input sets, at most `concurrency` runs at a time,
//! grouped under one batch id. Every input set is checked before any run starts, so a typo in
//! row 900 does not leave 899 runs behind.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use uuid::Uuid;

use app::models::{BatchFormat, BatchRows, RowError};

use super::{run::Prepared, Engine, EngineError, StartRequest};

/// Most input sets in one batch.
pub const MAX_ITEMS: usize = 10_000;
const DEFAULT_CONCURRENCY: usize = 4;
const MAX_CONCURRENCY: usize = 256;

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"pipeline": "research-brief", "csv": "topic\nraft\npaxos", "concurrency": 2}))]
pub struct BatchRequest {
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub yaml: Option<String>,
    /// As for a single run: save a changed `yaml` as the pipeline's next version.
    #[serde(default)]
    pub save: bool,
    /// Input sets as JSON objects…
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub inputs: Option<Vec<Map<String, Value>>>,
    /// …or as CSV: a header row of input names, then one row per run.
    #[serde(default)]
    pub csv: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub env: Map<String, Value>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// Runs of the batch at the same time (default 4).
    #[serde(default)]
    pub concurrency: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct BatchStarted {
    pub batch_id: Uuid,
    pub pipeline: String,
    pub version: u32,
    /// One per input set, in order; queued runs start as earlier ones finish.
    pub execution_ids: Vec<Uuid>,
    pub concurrency: usize,
}

/// A batch item that failed the checks: its position and why.
#[derive(Debug)]
pub struct BadItem {
    pub index: usize,
    pub error: String,
}

pub enum BatchError {
    Engine(EngineError),
    Item(BadItem),
}

impl From<EngineError> for BatchError {
    fn from(error: EngineError) -> Self {
        BatchError::Engine(error)
    }
}

/// Input sets from CSV text: the header names the inputs; every value is a string.
pub fn parse_csv(text: &str) -> Result<Vec<Map<String, Value>>, BatchError> {
    csv_rows(text)
        .map_err(BatchError::Engine)?
        .into_iter()
        .enumerate()
        .map(|(index, row)| {
            row.set.map_err(|error| {
                BatchError::Item(BadItem {
                    index,
                    error: format!("csv row {}: {error}", index + 2),
                })
            })
        })
        .collect()
}

/// One row of batch input text: the 1-based line it starts on, and its input set or why it has
/// none.
#[derive(Debug)]
pub struct LocatedRow {
    pub line: u64,
    pub set: Result<Map<String, Value>, String>,
}

/// Every row of CSV text with its line (a quoted field may span lines: the row's first line).
/// Fails only when the header is unreadable; a bad row is a row with an error.
pub fn csv_rows(text: &str) -> Result<Vec<LocatedRow>, EngineError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| EngineError::BadRequest(format!("csv header: {e}")))?
        .clone();
    if headers.iter().any(str::is_empty) {
        return Err(EngineError::BadRequest(
            "csv header: every column needs an input name".into(),
        ));
    }
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => rows.push(LocatedRow {
                // The position before reading can sit on the previous row's line end.
                line: record.position().map_or(line, csv::Position::line),
                set: Ok(headers
                    .iter()
                    .zip(record.iter())
                    .map(|(name, value)| (name.to_owned(), Value::String(value.to_owned())))
                    .collect()),
            }),
            Err(error) => {
                let line = error.position().map_or(line, csv::Position::line);
                let message = match error.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("{len} fields where the header names {expected_len}"),
                    _ => error.to_string(),
                };
                rows.push(LocatedRow {
                    line,
                    set: Err(message),
                });
            }
        }
    }
    Ok(rows)
}

/// Every non-blank line of JSON-lines text: each must be one JSON object.
pub fn json_rows(text: &str) -> Vec<LocatedRow> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| LocatedRow {
            line: index as u64 + 1,
            set: match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(set)) => Ok(set),
                Ok(other) => Err(format!(
                    "expected a JSON object of input values, not {}",
                    json_kind(&other)
                )),
                Err(error) => Err(format!("not JSON: {error}")),
            },
        })
        .collect()
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl Engine {
    /// Batch input text read as `format`, each row checked against the inputs `yaml` declares
    /// exactly as a run checks them, so the rows kept are the ones [`Engine::start_batch`]
    /// accepts. Fails for an invalid `yaml`, an unreadable CSV header, or more good rows than a
    /// batch may hold.
    pub fn parse_batch(
        &self,
        yaml: &str,
        text: &str,
        format: BatchFormat,
    ) -> Result<BatchRows, EngineError> {
        let pipeline = self
            .validate(yaml.as_bytes())
            .map_err(EngineError::Invalid)?;
        let located = match format {
            BatchFormat::Csv => csv_rows(text)?,
            BatchFormat::JsonLines => json_rows(text),
        };
        let no_env = Map::new();
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for LocatedRow { line, set } in located {
            let checked = set.and_then(|set| {
                Prepared::new(&pipeline, &set, &no_env, None, None, &self.inner.providers)
                    .map(|_| set)
            });
            match checked {
                Ok(set) => rows.push(set),
                Err(message) => errors.push(RowError { line, message }),
            }
        }
        if rows.len() > MAX_ITEMS {
            return Err(EngineError::BadRequest(format!(
                "{} rows; a batch holds at most {MAX_ITEMS}: split the text",
                rows.len()
            )));
        }
        Ok(BatchRows { rows, errors })
    }

    pub async fn start_batch(&self, request: BatchRequest) -> Result<BatchStarted, BatchError> {
        let sets = match (request.inputs, request.csv.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(EngineError::BadRequest(
                    "give the input sets as `inputs` (JSON) or `csv`, not both".into(),
                )
                .into())
            }
            (Some(sets), None) => sets,
            (None, Some(csv)) => parse_csv(csv)?,
            (None, None) => {
                return Err(EngineError::BadRequest(
                    "a batch needs input sets: `inputs` (a JSON array of objects) or `csv`".into(),
                )
                .into())
            }
        };
        if sets.is_empty() {
            return Err(EngineError::BadRequest("the batch has no input sets".into()).into());
        }
        if sets.len() > MAX_ITEMS {
            return Err(EngineError::BadRequest(format!(
                "the batch has {} input sets; the limit is {MAX_ITEMS}",
                sets.len()
            ))
            .into());
        }
        let concurrency = request.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(EngineError::BadRequest(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY}"
            ))
            .into());
        }
        let template = StartRequest {
            pipeline: request.pipeline,
            version: request.version,
            yaml: request.yaml,
            save: request.save,
            inputs: Map::new(),
            env: request.env,
            provider: request.provider,
            model: request.model,
        };
        let definition = self.resolve(&template).await?;
        let mut prepared = Vec::with_capacity(sets.len());
        for (index, inputs) in sets.into_iter().enumerate() {
            let request = StartRequest {
                inputs,
                ..template.clone()
            };
            let run = self.prepare(&definition, &request).map_err(|error| {
                BatchError::Item(BadItem {
                    index,
                    error: error.to_string(),
                })
            })?;
            prepared.push((Uuid::new_v4(), run));
        }

        let batch_id = Uuid::new_v4();
        let started = BatchStarted {
            batch_id,
            pipeline: definition.name.clone(),
            version: definition.version,
            execution_ids: prepared.iter().map(|(id, _)| *id).collect(),
            concurrency,
        };
        let engine = self.clone();
        let slots = Arc::new(Semaphore::new(concurrency));
        let cancelled = self.inner.stopping.child_token();
        self.batches().insert(batch_id, cancelled.clone());
        self.inner.tasks.spawn(async move {
            for (execution_id, run) in prepared {
                let permit = tokio::select! {
                    // Cancellation first: a slot freed by a cancelled run must not start the
                    // next queued one.
                    biased;
                    () = cancelled.cancelled() => break,
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                // Then a place among the runs executing at once: a batch's queued runs wait
                // for one rather than being refused.
                let place = tokio::select! {
                    biased;
                    () = cancelled.cancelled() => break,
                    place = engine.inner.run_places.clone().acquire_owned() => match place {
                        Ok(place) => place,
                        Err(_) => break,
                    },
                };
                engine.launch(
                    definition.clone(),
                    run,
                    Some(batch_id),
                    execution_id,
                    None,
                    super::Places {
                        _run: place,
                        _batch: Some(permit),
                    },
                );
            }
            engine.batches().remove(&batch_id);
        });
        Ok(started)
    }

    /// Cancels the batch's running runs; its queued runs never start.
    pub fn cancel_batch(&self, batch_id: Uuid) -> Result<usize, EngineError> {
        let queue = self.batches().remove(&batch_id);
        if let Some(queue) = &queue {
            queue.cancel();
        }
        let controls: Vec<_> = self
            .runs()
            .values()
            .filter(|c| c.batch_id == Some(batch_id))
            .cloned()
            .collect();
        for control in &controls {
            control.request_cancel("the batch was cancelled".into());
        }
        if queue.is_none() && controls.is_empty() {
            return Err(EngineError::Conflict(format!(
                "batch {batch_id} has no runs in progress on this server"
            )));
        }
        Ok(controls.len())
    }
}
