//! What a call costs: USD per million prompt and completion tokens, by provider kind and model.

use serde::Deserialize;

use crate::{ProviderKind, Usage};

/// One row of the table; config files add `[[prices]]` rows that win over the built-ins.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// A provider kind (`openai`) or a named instance (`local-llama`).
    pub provider: String,
    /// A model name, or a prefix ending in `*` (`gpt-4o*`).
    pub model: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// List prices in USD per million tokens (standard tier, prompts within the base context
/// tier), as published by each provider in 2025. Prefix rows catch dated snapshots such as
/// `gpt-4o-2024-08-06` or `claude-sonnet-4-5-20250929`; longer prefixes separate the smaller
/// siblings (`gpt-4o-mini*` from `gpt-4o*`).
const BUILT_IN: &[(&str, &str, f64, f64)] = &[
    ("openai", "gpt-4o*", 2.50, 10.00),
    ("openai", "gpt-4o-mini*", 0.15, 0.60),
    ("openai", "gpt-4.1*", 2.00, 8.00),
    ("openai", "gpt-4.1-mini*", 0.40, 1.60),
    ("openai", "gpt-4.1-nano*", 0.10, 0.40),
    ("openai", "o3*", 2.00, 8.00),
    ("openai", "o3-mini*", 1.10, 4.40),
    ("openai", "o4-mini*", 1.10, 4.40),
    ("openai", "gpt-5*", 1.25, 10.00),
    ("openai", "gpt-5-mini*", 0.25, 2.00),
    ("openai", "gpt-5-nano*", 0.05, 0.40),
    ("anthropic", "claude-opus-4-1*", 15.00, 75.00),
    ("anthropic", "claude-sonnet-4-5*", 3.00, 15.00),
    ("anthropic", "claude-haiku-4-5*", 1.00, 5.00),
    ("anthropic", "claude-3-5-haiku*", 0.80, 4.00),
    ("gemini", "gemini-2.5-pro*", 1.25, 10.00),
    ("gemini", "gemini-2.5-flash*", 0.30, 2.50),
    ("gemini", "gemini-2.5-flash-lite*", 0.10, 0.40),
    ("gemini", "gemini-2.0-flash*", 0.10, 0.40),
    ("gemini", "gemini-2.0-flash-lite*", 0.075, 0.30),
    // Made-up prices so the offline demo shows what costs look like.
    ("simulated", "sim-small", 0.50, 1.50),
    ("simulated", "sim-large", 3.00, 15.00),
];

#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    /// Built-ins first, then overrides; on an equal match the later row wins.
    rows: Vec<Price>,
    /// Rows from this index on came from the config file.
    first_override: usize,
}

impl PriceTable {
    /// Built-in prices, then `overrides` on top.
    pub fn new(overrides: Vec<Price>) -> Self {
        let mut rows: Vec<Price> = BUILT_IN
            .iter()
            .map(|&(provider, model, input, output)| Price {
                provider: provider.to_owned(),
                model: model.to_owned(),
                input_per_mtok: input,
                output_per_mtok: output,
            })
            .collect();
        let first_override = rows.len();
        rows.extend(overrides);
        Self {
            rows,
            first_override,
        }
    }

    /// The row that prices `model` on `instance`: a matching override beats every built-in,
    /// rows naming the instance beat rows naming its kind, an exact model beats the longest
    /// matching `*` prefix, and among equals the last row wins.
    pub fn find(&self, instance: &str, kind: ProviderKind, model: &str) -> Option<&Price> {
        let kind = kind.as_str();
        self.rows
            .iter()
            .enumerate()
            .filter_map(|(order, row)| {
                let by_instance = if row.provider == instance {
                    true
                } else if row.provider == kind {
                    false
                } else {
                    return None;
                };
                let specificity = match row.model.strip_suffix('*') {
                    Some(prefix) if model.starts_with(prefix) => prefix.len(),
                    Some(_) => return None,
                    // Exact names outrank every prefix.
                    None if row.model == model => usize::MAX,
                    None => return None,
                };
                let is_override = order >= self.first_override;
                Some(((is_override, by_instance, specificity, order), row))
            })
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, row)| row)
    }

    /// Cost in USD; unknown models cost 0 (and the caller may say so).
    pub fn cost(&self, instance: &str, kind: ProviderKind, model: &str, usage: Usage) -> f64 {
        self.known_cost(instance, kind, model, usage).unwrap_or(0.0)
    }

    /// Cost in USD, or None for a model with no price here.
    pub fn known_cost(
        &self,
        instance: &str,
        kind: ProviderKind,
        model: &str,
        usage: Usage,
    ) -> Option<f64> {
        self.find(instance, kind, model).map(|price| {
            (f64::from(usage.prompt_tokens) * price.input_per_mtok
                + f64::from(usage.completion_tokens) * price.output_per_mtok)
                / 1_000_000.0
        })
    }

    /// The known model of `instance` whose prompt and completion prices add up to the least
    /// (the first by name among equals): what a connection test spends its one token on.
    pub fn cheapest(&self, instance: &str, kind: ProviderKind) -> Option<String> {
        self.models(instance, kind)
            .into_iter()
            .filter_map(|model| {
                let price = self.find(instance, kind, &model)?;
                Some((price.input_per_mtok + price.output_per_mtok, model))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, model)| model)
    }

    /// The models priced for `instance` (by its name or its kind), sorted: the models this
    /// server knows it can use there. A `gpt-4o*` row names the model `gpt-4o`.
    pub fn models(&self, instance: &str, kind: ProviderKind) -> Vec<String> {
        let mut models: Vec<String> = self
            .rows
            .iter()
            .filter(|row| row.provider == instance || row.provider == kind.as_str())
            .map(|row| row.model.strip_suffix('*').unwrap_or(&row.model))
            .filter(|model| !model.is_empty() && !model.ends_with(['-', '.']))
            .map(str::to_owned)
            .collect();
        models.sort_unstable();
        models.dedup();
        models
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_the_priced_ones_of_the_instance_and_its_kind() {
        let table = PriceTable::new(vec![Price {
            provider: "local-llama".into(),
            model: "llama-3*".into(),
            input_per_mtok: 0.0,
            output_per_mtok: 0.0,
        }]);
        let models = table.models("local-llama", ProviderKind::Openai);
        assert!(models.iter().any(|m| m == "gpt-4o"), "{models:?}");
        assert!(models.iter().any(|m| m == "llama-3"), "{models:?}");
        assert!(
            !models.iter().any(|m| m.starts_with("claude")),
            "{models:?}"
        );
        assert_eq!(
            table.models("simulated", ProviderKind::Simulated),
            ["sim-large", "sim-small"]
        );
    }
}
