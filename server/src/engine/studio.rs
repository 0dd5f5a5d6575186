//! What the pipeline studio asks of the engine besides storage ([`super::library`]): a text
//! checked by the engine's own validator, with the outline its graph and run form are drawn
//! from; what its editor completes (the validator's key tables, this server's providers, the
//! template filters); a step's prompt rendered as a run would send it; and the providers page's
//! list and connection test.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use app::models::{
    Check, EditorSchema, GraphStep, InputField, KeyDoc, Preview, ProviderDoc, ProviderInfo,
    ProviderTest,
};
use futures::StreamExt;
use pipeline::validate::keys::{self, Key, KeyDefault};
use providers::{ChatRequest, Delta, Usage};
use serde_json::{Map, Value};

use super::{library, run::Prepared, step, unknown_provider, Engine};

/// How long a connection test may take, connecting included.
pub const PROVIDER_TEST_TIMEOUT: Duration = Duration::from_secs(10);

impl Engine {
    /// The validator's verdict on `yaml` against this server's providers, and its outline.
    pub fn check(&self, yaml: &str) -> Check {
        let checked = pipeline::check(yaml.as_bytes(), &self.inner.catalog);
        let outline = checked.outline;
        Check {
            problems: checked
                .result
                .as_ref()
                .err()
                .map(|d| library::problems(d))
                .unwrap_or_default(),
            name: outline.name,
            steps: outline
                .steps
                .into_iter()
                .map(|s| GraphStep {
                    name: s.name,
                    line: s.line,
                    depends_on: s.depends_on,
                    provider: s.provider,
                    model: s.model,
                })
                .collect(),
            cycle: outline.cycle,
            inputs: outline
                .inputs
                .into_iter()
                .map(|(name, spec)| InputField {
                    name,
                    description: spec.description,
                    default: spec.default,
                })
                .collect(),
            env: outline.env,
        }
    }

    /// The keys of each place in a pipeline file, the providers configured here with the
    /// models their prices name, the template filters, and the loader's size limit.
    pub fn editor_schema(&self) -> EditorSchema {
        let places: [(&str, &[Key]); 5] = [
            ("top", keys::TOP_LEVEL),
            ("defaults", keys::DEFAULTS),
            ("step", keys::STEP),
            ("retry", keys::RETRY),
            ("input", keys::INPUT),
        ];
        let keys = places
            .into_iter()
            .flat_map(|(place, keys)| {
                keys.iter().map(move |key| KeyDoc {
                    place: place.to_owned(),
                    name: key.name.to_owned(),
                    kind: key.kind.describe(),
                    default: match key.default {
                        KeyDefault::Required => Some("required".to_owned()),
                        KeyDefault::Unset => None,
                        KeyDefault::Value(value) => Some(value.to_owned()),
                        KeyDefault::Inherit(from) => Some(format!("`{from}`")),
                        KeyDefault::EachKey => Some("each key's own default".to_owned()),
                    },
                    doc: key.doc.to_owned(),
                })
            })
            .collect();
        let registry = &self.inner.providers;
        let providers = registry
            .names()
            .into_iter()
            .filter_map(|name| {
                let kind = registry.kind(&name)?;
                Some(ProviderDoc {
                    models: self.inner.prices.models(&name, kind),
                    kind: kind.as_str().to_owned(),
                    name,
                })
            })
            .collect();
        EditorSchema {
            keys,
            providers,
            filters: pipeline::template::FILTERS
                .iter()
                .map(|(name, doc)| ((*name).to_owned(), (*doc).to_owned()))
                .collect(),
            max_bytes: u32::try_from(pipeline::MAX_BYTES).unwrap_or(u32::MAX),
        }
    }

    /// Step `step` of `yaml` rendered exactly as a run would send it (the engine's own
    /// rendering, token count and budget), with its estimated cost; nothing is sent. `inputs`
    /// get the declared defaults for what is missing, env its declared values, and each step it
    /// depends on that `outputs` leaves out renders as empty text. The error says what to fix.
    pub fn preview(
        &self,
        yaml: &str,
        step: &str,
        inputs: &Map<String, Value>,
        outputs: &Map<String, Value>,
    ) -> Result<Preview, String> {
        let pipeline = self.validate(yaml.as_bytes()).map_err(|diagnostics| {
            let first = diagnostics
                .first()
                .map(|d| format!("; the first, at {d}"))
                .unwrap_or_default();
            format!(
                "the text has {} problem(s){first}; fix them to preview a step",
                diagnostics.len()
            )
        })?;
        let Some(found) = pipeline.steps.iter().find(|s| s.name == step) else {
            let names: Vec<&str> = pipeline.steps.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "pipeline `{}` has no step `{step}`; its steps: {}",
                pipeline.name,
                names.join(", ")
            ));
        };
        let prepared = Prepared::new(
            &pipeline,
            inputs,
            &Map::new(),
            None,
            None,
            &self.inner.providers,
        )
        .map_err(|why| format!("cannot preview step `{step}`: {why}"))?;
        // Outputs are text in a run; a value given as JSON reads as its JSON text.
        let mut given: HashMap<String, String> = outputs
            .iter()
            .map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (name.clone(), text)
            })
            .collect();
        let mut blank = Vec::new();
        for earlier in &found.depends_on {
            if !given.contains_key(earlier) {
                given.insert(earlier.clone(), String::new());
                blank.push(format!("`{earlier}`"));
            }
        }
        let rendered = step::render(found, &prepared.context(&given)).map_err(|why| {
            if blank.is_empty() {
                why
            } else {
                format!(
                    "{why} (step {} had no output given and rendered as empty text: if the \
                     template needs it, give its output or pick a run that has it)",
                    blank.join(", ")
                )
            }
        })?;
        let usage = Usage {
            prompt_tokens: rendered.prompt_tokens,
            completion_tokens: rendered.max_tokens,
        };
        Ok(Preview {
            step: found.name.clone(),
            cost_usd: self.known_cost(&found.provider, &found.model, usage),
            provider: found.provider.clone(),
            model: found.model.clone(),
            system: rendered.system,
            prompt: rendered.prompt,
            input_tokens: rendered.prompt_tokens,
            max_tokens: rendered.max_tokens,
        })
    }

    /// Every provider instance configured here, with its connection (never the key) and the
    /// models its prices name.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        let registry = &self.inner.providers;
        registry
            .names()
            .into_iter()
            .filter_map(|name| {
                let provider = registry.get(&name)?;
                let kind = provider.kind();
                let connection = provider.connection();
                Some(ProviderInfo {
                    kind: kind.as_str().to_owned(),
                    base_url: connection.as_ref().map(|c| c.base_url.clone()),
                    key_set: connection.as_ref().is_some_and(|c| c.key_set),
                    key_source: connection
                        .map_or_else(|| "no key needed".to_owned(), |c| c.key_source),
                    models: self.inner.prices.models(&name, kind),
                    name,
                })
            })
            .collect()
    }

    /// Sends provider `name` a one-token request for its cheapest known model and reads the
    /// answer to its end, within [`PROVIDER_TEST_TIMEOUT`]; a refusal, an error or silence is
    /// `ok: false` with what went wrong. An error naming this server's providers for an unknown
    /// name.
    pub async fn test_provider(&self, name: &str) -> Result<ProviderTest, String> {
        let registry = &self.inner.providers;
        let Some(provider) = registry.get(name) else {
            return Err(unknown_provider(name, registry));
        };
        let Some(model) = self.inner.prices.cheapest(name, provider.kind()) else {
            return Ok(ProviderTest {
                ok: false,
                millis: 0,
                detail: format!(
                    "no model is known for `{name}`, so there is nothing to ask: add a \
                     [[prices]] row with provider = \"{name}\" and a model it serves to the \
                     config file"
                ),
            });
        };
        let request = ChatRequest {
            model: model.clone(),
            system: None,
            prompt: "Say OK.".to_owned(),
            max_tokens: 1,
            temperature: 0.0,
            seed: 0,
        };
        let started = Instant::now();
        self.inner.calls.sent(name);
        let exchange = async {
            let mut stream = provider.stream(request).await?;
            let mut text = String::new();
            while let Some(delta) = stream.next().await {
                if let Delta::Text(chunk) = delta? {
                    text.push_str(&chunk);
                }
            }
            Ok::<_, providers::ProviderError>(text)
        };
        let outcome = tokio::time::timeout(PROVIDER_TEST_TIMEOUT, exchange).await;
        let millis = started.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        if !matches!(outcome, Ok(Ok(_))) {
            self.inner.calls.failed(name);
        }
        Ok(match outcome {
            Ok(Ok(text)) => ProviderTest {
                ok: true,
                millis,
                detail: format!(
                    "model `{model}` answered a one-token request ({} characters)",
                    text.chars().count()
                ),
            },
            Ok(Err(error)) => ProviderTest {
                ok: false,
                millis,
                detail: format!("model `{model}`: {}", error.message),
            },
            Err(_) => ProviderTest {
                ok: false,
                millis,
                detail: format!(
                    "model `{model}` did not answer within {} s",
                    PROVIDER_TEST_TIMEOUT.as_secs()
                ),
            },
        })
    }
}
