//! `steps:`: the step names first (a step may refer to any other), then each step with its
//! defaults applied and its references checked, then the dependency graph over all of them. Also
//! the settings a step shares with `defaults:` (`max_tokens`, `temperature`, `timeout_ms`,
//! `retry`).

use std::collections::HashMap;

use super::fields::{is_identifier, Fields};
use super::graph::Edge;
use super::keys;
use super::references::Scope;
use super::{Checker, OutlineStep};
use crate::model::{Defaults, InputSpec, RetryPolicy, Step};
use crate::yaml::{self, Node, Value};

/// A step's name and where it is written, from the first pass over `steps`.
struct StepName<'n> {
    name: String,
    node: &'n Node,
}

impl Checker<'_, '_> {
    pub(super) fn steps(
        &mut self,
        node: &Node,
        defaults: &Defaults,
        inputs: &[(String, InputSpec)],
        env: &[(String, String)],
    ) -> Option<Vec<Step>> {
        let items = match &node.value {
            Value::Seq(items) if !items.is_empty() => items,
            Value::Seq(_) => {
                self.error(
                    node.start,
                    "`steps` is empty; a pipeline needs at least one step",
                );
                return None;
            }
            _ => {
                self.error(
                    node.start,
                    format!(
                        "`steps` must be a list of steps (lines starting with `- name: …`), found {}",
                        node.describe()
                    ),
                );
                return None;
            }
        };

        // First pass: names, so that references to any step (earlier or later) can be resolved.
        let mut names: Vec<Option<StepName<'_>>> = Vec::with_capacity(items.len());
        let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        for item in items {
            let entry = match &item.value {
                Value::Map(pairs) => pairs
                    .iter()
                    .find(|(k, _)| k.scalar() == Some("name"))
                    .and_then(|(_, v)| {
                        v.scalar().filter(|_| !v.is_null()).map(|name| StepName {
                            name: name.to_owned(),
                            node: v,
                        })
                    }),
                _ => None,
            };
            names.push(entry);
        }
        for (i, entry) in names.iter().enumerate() {
            let Some(StepName { name, node }) = entry else {
                continue;
            };
            if !is_identifier(name) {
                self.error_renaming(
                    node.start,
                    format!(
                        "step name `{}` must start with a letter or `_` and contain only letters, digits and `_`, because templates refer to it as `steps.NAME.output`",
                        yaml::shorten(name, 40)
                    ),
                    name,
                    false,
                );
            }
            match by_name.get(name.as_str()) {
                Some(&first) => {
                    let first_line = names[first].as_ref().map_or(0, |n| n.node.start.line);
                    self.error(
                        node.start,
                        format!(
                            "duplicate step name `{name}` (first used on line {first_line}); step names must be unique"
                        ),
                    );
                }
                None => {
                    by_name.insert(name, i);
                }
            }
        }

        let step_names: Vec<&str> = names.iter().flatten().map(|n| n.name.as_str()).collect();
        let labels: Vec<Option<&str>> = names
            .iter()
            .map(|n| n.as_ref().map(|n| n.name.as_str()))
            .collect();
        let input_names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        let env_names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        let scope = Scope {
            by_name: &by_name,
            step_names: &step_names,
            labels: &labels,
            inputs: &input_names,
            env: &env_names,
        };

        let mut steps = Vec::with_capacity(items.len());
        let mut edges: Vec<Vec<Edge<'_>>> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let (step, step_edges) = self.step(item, i, defaults, &scope);
            steps.push(step);
            edges.push(step_edges);
        }

        let order = self.order(&edges, &labels);
        let (Some(order), true) = (order, steps.iter().all(Option::is_some)) else {
            return None;
        };
        let mut steps: Vec<Option<Step>> = steps;
        Some(
            order
                .into_iter()
                .filter_map(|i| steps.get_mut(i).and_then(Option::take))
                .collect(),
        )
    }

    /// One step. Returns it (None if unusable) and its dependency edges, which are kept even for
    /// an unusable step so that cycles are still reported.
    fn step<'n>(
        &mut self,
        node: &'n Node,
        index: usize,
        defaults: &Defaults,
        scope: &Scope<'_>,
    ) -> (Option<Step>, Vec<Edge<'n>>) {
        let mut edges = Vec::new();
        let label = match &node.value {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.scalar() == Some("name"))
                .and_then(|(_, v)| v.scalar())
                .map_or_else(
                    || format!("step {}", index + 1),
                    |n| format!("step `{}`", yaml::shorten(n, 40)),
                ),
            _ => format!("step {}", index + 1),
        };
        let place = format!("in {label}");
        let Some(fields) = self.fields(node, keys::STEP, &place, &format!("each step ({label})"))
        else {
            return (None, edges);
        };

        let name = match fields.get("name") {
            None => {
                self.error(
                    node.start,
                    format!("{label} has no `name:`; add one, e.g. `name: draft`"),
                );
                None
            }
            Some(n) => self.text(n, "name"),
        };
        let description = fields
            .get("description")
            .and_then(|n| self.optional_text(n, "description"));
        let provider = fields
            .get("provider")
            .map_or_else(|| Some(defaults.provider.clone()), |n| self.provider(n));
        let model = fields
            .get("model")
            .map_or_else(|| Some(defaults.model.clone()), |n| self.text(n, "model"));
        let mut max_tokens = defaults.max_tokens;
        let mut temperature = defaults.temperature;
        let mut timeout_ms = defaults.timeout_ms;
        self.sampling(&fields, &mut max_tokens, &mut temperature, &mut timeout_ms);
        let token_budget = fields
            .get("token_budget")
            .and_then(|n| self.whole(n, "token_budget", keys::TOKENS))
            .and_then(|v| u32::try_from(v).ok());
        let retry = fields
            .get("retry")
            .map_or(defaults.retry, |n| self.retry(n, defaults.retry));

        let mut depends_on: Vec<String> = Vec::new();
        if let Some(deps) = fields.get("depends_on") {
            self.depends_on(deps, index, scope, &mut depends_on, &mut edges);
        }

        let system = fields.get("system").and_then(|n| {
            let text = self.optional_text(n, "system")?;
            self.template_refs(
                n,
                &text,
                "system",
                index,
                scope,
                &mut depends_on,
                &mut edges,
            );
            Some(text)
        });
        let prompt = match fields.get("prompt") {
            None => {
                self.error(
                    node.start,
                    format!("{label} has no `prompt:`; add the prompt text to send to the model"),
                );
                None
            }
            Some(n) => self.text(n, "prompt").inspect(|text| {
                self.template_refs(n, text, "prompt", index, scope, &mut depends_on, &mut edges);
            }),
        };

        depends_on.sort_unstable();
        depends_on.dedup();
        if let Some(name) = fields.get("name").and_then(written) {
            let as_written = |key: &str, inherited: &str| {
                fields
                    .get(key)
                    .and_then(written)
                    .unwrap_or(inherited)
                    .to_owned()
            };
            self.outline.steps.push(OutlineStep {
                name: name.to_owned(),
                line: node.start.line,
                depends_on: depends_on.clone(),
                provider: as_written("provider", &defaults.provider),
                model: as_written("model", &defaults.model),
            });
        }
        let step = match (name, provider, model, prompt) {
            (Some(name), Some(provider), Some(model), Some(prompt)) => Some(Step {
                name,
                description,
                provider,
                model,
                system,
                prompt,
                max_tokens,
                temperature,
                token_budget,
                retry,
                timeout_ms,
                depends_on,
            }),
            _ => None,
        };
        (step, edges)
    }

    /// `max_tokens`, `temperature` and `timeout_ms`, shared by `defaults` and steps.
    pub(super) fn sampling(
        &mut self,
        fields: &Fields<'_>,
        max_tokens: &mut u32,
        temperature: &mut f32,
        timeout_ms: &mut u64,
    ) {
        if let Some(v) = fields
            .get("max_tokens")
            .and_then(|n| self.whole(n, "max_tokens", keys::TOKENS))
        {
            *max_tokens = u32::try_from(v).unwrap_or(u32::MAX);
        }
        if let Some(v) = fields
            .get("temperature")
            .and_then(|n| self.number(n, "temperature", keys::TEMPERATURE))
        {
            // In 0..=2, so the narrowing only rounds.
            #[allow(clippy::cast_possible_truncation)]
            let v = v as f32;
            *temperature = v;
        }
        if let Some(v) = fields
            .get("timeout_ms")
            .and_then(|n| self.whole(n, "timeout_ms", keys::TIMEOUT_MS))
        {
            *timeout_ms = v;
        }
    }

    /// A `retry:` mapping; keys it leaves out come from `base`.
    pub(super) fn retry(&mut self, node: &Node, base: RetryPolicy) -> RetryPolicy {
        let mut retry = base;
        let Some(fields) = self.fields(node, keys::RETRY, "in `retry`", "`retry`") else {
            return retry;
        };
        if let Some(v) = fields
            .get("attempts")
            .and_then(|n| self.whole(n, "attempts", keys::ATTEMPTS))
        {
            retry.attempts = u32::try_from(v).unwrap_or(1);
        }
        if let Some(v) = fields
            .get("backoff_ms")
            .and_then(|n| self.whole(n, "backoff_ms", keys::WAIT_MS))
        {
            retry.backoff_ms = v;
        }
        let max_node = fields.get("max_backoff_ms");
        if let Some(v) = max_node.and_then(|n| self.whole(n, "max_backoff_ms", keys::WAIT_MS)) {
            retry.max_backoff_ms = v;
        }
        if retry.max_backoff_ms < retry.backoff_ms {
            let at = max_node
                .or(fields.get("backoff_ms"))
                .map_or(node.start, |n| n.start);
            self.error(
                at,
                format!(
                    "`max_backoff_ms` ({}) must be at least `backoff_ms` ({})",
                    retry.max_backoff_ms, retry.backoff_ms
                ),
            );
        }
        retry
    }
}

/// A scalar's text as written, if it has one.
fn written(node: &Node) -> Option<&str> {
    node.scalar().filter(|_| !node.is_null())
}
