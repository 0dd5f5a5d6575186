//! What the pipeline studio asks of the engine besides storage ([`super::library`]): a text
//! checked by the engine's own validator, with the outline its graph and run form are drawn
//! from, and what its editor completes (the validator's key tables, this server's providers,
//! the template filters).

use app::models::{Check, EditorSchema, GraphStep, InputField, KeyDoc, ProviderDoc};
use pipeline::validate::keys::{self, Key, KeyDefault};

use super::{library, Engine};

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
}
