//! YAML text in, a [`Pipeline`] or every problem found out.
//!
//! The checks run in one pass over the located tree and keep going after a problem, so an editor
//! can underline everything at once. A value that is wrong is reported and replaced by its
//! default, which lets later checks (references, cycles) still run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::model::{Defaults, InputSpec, Pipeline, RetryPolicy, Step};
use crate::template::{self, BUILTIN_GLOBALS};
use crate::yaml::{self, diag, Mark, Node, SourceIndex, Style, Value};
use crate::Diagnostic;

/// What the validator needs to know about the server: the provider names configured there.
///
/// An empty list means "not known" (e.g. the browser editor before it has asked the server), and
/// then provider names are not checked.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub providers: Vec<String>,
}

/// Provider and model used where neither the step nor `defaults:` names one: the offline
/// simulator, so a fresh install runs pipelines with no key.
pub const DEFAULT_PROVIDER: &str = "simulated";
pub const DEFAULT_MODEL: &str = "sim-small";

/// The defaults used for every key that `defaults:` leaves out.
pub fn builtin_defaults() -> Defaults {
    Defaults {
        provider: DEFAULT_PROVIDER.to_owned(),
        model: DEFAULT_MODEL.to_owned(),
        max_tokens: 512,
        temperature: 0.7,
        timeout_ms: 120_000,
        retry: RetryPolicy {
            attempts: 3,
            backoff_ms: 500,
            max_backoff_ms: 30_000,
        },
    }
}

/// `max_parallel` when the file does not set it, and its upper bound.
pub const DEFAULT_MAX_PARALLEL: u32 = 4;
pub const MAX_PARALLEL_LIMIT: u32 = 64;
/// At most this many diagnostics are returned; a file with more is not worth listing further.
pub const MAX_DIAGNOSTICS: usize = 500;

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "defaults",
    "inputs",
    "env",
    "max_parallel",
    "steps",
];
const DEFAULTS_KEYS: &[&str] = &[
    "provider",
    "model",
    "max_tokens",
    "temperature",
    "timeout_ms",
    "retry",
];
const INPUT_KEYS: &[&str] = &["description", "default"];
const RETRY_KEYS: &[&str] = &["attempts", "backoff_ms", "max_backoff_ms"];
const STEP_KEYS: &[&str] = &[
    "name",
    "description",
    "provider",
    "model",
    "system",
    "prompt",
    "max_tokens",
    "temperature",
    "token_budget",
    "retry",
    "timeout_ms",
    "depends_on",
];
/// Names a template uses for its own context sections, so inputs cannot take them.
const RESERVED_INPUTS: &[&str] = &["inputs", "env", "steps"];

/// Parses and checks a pipeline file. Returns all problems at once, in file order.
pub fn validate(text: &[u8], catalog: &Catalog) -> Result<Pipeline, Vec<Diagnostic>> {
    let document = yaml::load(text).map_err(|d| vec![d])?;
    let mut checker = Checker {
        source: document.source,
        index: None,
        catalog,
        diagnostics: document.diagnostics,
    };
    let pipeline = checker.document(document.root.as_deref());
    let mut diagnostics = checker.diagnostics;
    match pipeline {
        Some(pipeline) if diagnostics.is_empty() => Ok(pipeline),
        _ => {
            if diagnostics.is_empty() {
                // Every path that gives up pushes a diagnostic first; this keeps the contract
                // ("Err is never empty") even if one is missed.
                diagnostics.push(diag(1, 1, "the pipeline is not valid"));
            }
            diagnostics.sort_by_key(|d| (d.line, d.column));
            diagnostics.truncate(MAX_DIAGNOSTICS);
            Err(diagnostics)
        }
    }
}

/// The entries of one YAML mapping, by key.
struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }
}

/// A step's name and where it is written, from the first pass over `steps`.
struct StepName<'n> {
    name: String,
    node: &'n Node,
}

/// An edge of the dependency graph: the step depended on, and where the dependency is written.
#[derive(Clone, Copy)]
struct Edge<'n> {
    to: usize,
    at: Mark,
    /// For a dependency implied by a template: the template, to point at the reference inside it
    /// if the edge is part of a cycle (only then, since finding it costs a search).
    template: Option<&'n Node>,
}

struct Checker<'a, 'c> {
    source: &'a str,
    index: Option<SourceIndex<'a>>,
    catalog: &'c Catalog,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_, '_> {
    fn error(&mut self, at: Mark, message: impl Into<String>) {
        self.diagnostics.push(diag(at.line, at.column, message));
    }

    /// [`closest`], unless the file already has more problems than are shown: a file with
    /// thousands of unknown names would otherwise compare each with thousands of candidates.
    fn suggest<'c>(&self, word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<String> {
        if self.diagnostics.len() >= MAX_DIAGNOSTICS {
            return None;
        }
        closest(word, candidates)
    }

    fn error_suggest(&mut self, at: Mark, message: impl Into<String>, suggestion: Option<String>) {
        let mut d = diag(at.line, at.column, message);
        d.suggestion = suggestion;
        self.diagnostics.push(d);
    }

    fn document(&mut self, root: Option<&Node>) -> Option<Pipeline> {
        let Some(root) = root.filter(|r| !r.is_null()) else {
            self.error(
                Mark {
                    line: 1,
                    column: 1,
                    index: 0,
                },
                "the file is empty; a pipeline needs at least `name:` and `steps:`",
            );
            return None;
        };
        if !matches!(root.value, Value::Map(_)) {
            self.error(
                root.start,
                format!(
                    "a pipeline file must be a mapping of keys (`name:`, `steps:`, …), found {}",
                    root.describe()
                ),
            );
            return None;
        }
        let fields = self.fields(root, TOP_KEYS, "at the top level", "the pipeline")?;

        let name = match fields.get("name") {
            None => {
                self.error(
                    root.start,
                    "the pipeline has no `name:`; add one, e.g. `name: research-brief`",
                );
                None
            }
            Some(node) => self.text(node, "name").filter(|name| {
                let ok = !name.is_empty()
                    && name.len() <= 100
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !ok {
                    let fixed = slug(name, true);
                    self.error_suggest(
                        node.start,
                        format!(
                            "pipeline name `{}` may only use letters, digits, `-` and `_` (at most 100 characters)",
                            yaml::shorten(name, 40)
                        ),
                        (!fixed.is_empty()).then_some(fixed),
                    );
                }
                ok
            }),
        };
        let description = fields
            .get("description")
            .and_then(|n| self.optional_text(n, "description"));
        let defaults = self.defaults(fields.get("defaults"));
        let inputs = fields
            .get("inputs")
            .map(|n| self.inputs(n))
            .unwrap_or_default();
        let env = fields.get("env").map(|n| self.env(n)).unwrap_or_default();
        let max_parallel = fields
            .get("max_parallel")
            .and_then(|n| self.whole(n, "max_parallel", 1, u64::from(MAX_PARALLEL_LIMIT)))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_PARALLEL);

        let steps = match fields.get("steps") {
            None => {
                self.error(
                    root.start,
                    "the pipeline has no `steps:`; add a list of steps, each with a `name:` and a `prompt:`",
                );
                None
            }
            Some(node) => self.steps(node, &defaults, &inputs, &env),
        };

        Some(Pipeline {
            name: name?,
            description,
            defaults,
            inputs,
            env,
            max_parallel,
            steps: steps?,
        })
    }

    /// The entries of mapping `node`, reporting keys that are not in `allowed` (with the closest
    /// allowed key as suggestion). `place` completes "unknown key `x` …" ("in step `draft`"),
    /// `what` names the mapping for type errors ("`defaults`").
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        allowed: &[&str],
        place: &str,
        what: &str,
    ) -> Option<Fields<'n>> {
        let Value::Map(pairs) = &node.value else {
            self.error(
                node.start,
                format!(
                    "{what} must be a mapping of `key: value` entries, found {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut entries = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let Some(name) = key.scalar().filter(|_| !key.is_null()) else {
                self.error(
                    key.start,
                    format!("keys must be plain names, found {}", key.describe()),
                );
                continue;
            };
            if allowed.contains(&name) {
                entries.push((name, &**key, &**value));
            } else {
                self.error_suggest(
                    key.start,
                    format!(
                        "unknown key `{}` {place}; allowed keys are {}",
                        yaml::shorten(name, 40),
                        allowed.join(", ")
                    ),
                    closest(name, allowed.iter().copied()),
                );
            }
        }
        Some(Fields { entries })
    }

    /// A text value. Numbers and booleans are taken as written (`model: 4` is the text "4").
    fn text(&mut self, node: &Node, key: &str) -> Option<String> {
        match node.scalar() {
            Some(_) if node.is_null() => {
                self.error(
                    node.start,
                    format!("`{key}` is empty; give it a value or remove it"),
                );
                None
            }
            Some(text) => Some(text.to_owned()),
            None => {
                self.error(
                    node.start,
                    format!("`{key}` must be text, found {}", node.describe()),
                );
                None
            }
        }
    }

    /// Like [`Self::text`], but an empty value simply means "not set".
    fn optional_text(&mut self, node: &Node, key: &str) -> Option<String> {
        if node.is_null() {
            None
        } else {
            self.text(node, key)
        }
    }

    /// A whole number in `min..=max`.
    fn whole(&mut self, node: &Node, key: &str, min: u64, max: u64) -> Option<u64> {
        let value = node.as_int();
        if let Some(v) = value.and_then(|v| u64::try_from(v).ok()) {
            if (min..=max).contains(&v) {
                return Some(v);
            }
        }
        let range = if max == u64::MAX || max == u64::from(u32::MAX) {
            format!("≥ {min}")
        } else {
            format!("from {min} to {max}")
        };
        let quoted = matches!(node.style(), Some(Style::Quoted))
            && node
                .scalar()
                .is_some_and(|t| t.trim().parse::<u64>().is_ok());
        let hint = if quoted { " (remove the quotes)" } else { "" };
        self.error(
            node.start,
            format!(
                "`{key}` must be a whole number {range}, found {}{hint}",
                node.describe()
            ),
        );
        None
    }

    /// A number in `min..=max`.
    fn number(&mut self, node: &Node, key: &str, min: f64, max: f64) -> Option<f64> {
        if let Some(v) = node.as_float() {
            if (min..=max).contains(&v) {
                return Some(v);
            }
        }
        self.error(
            node.start,
            format!(
                "`{key}` must be a number from {min} to {max}, found {}",
                node.describe()
            ),
        );
        None
    }

    fn provider(&mut self, node: &Node) -> Option<String> {
        let provider = self.text(node, "provider")?;
        let known = &self.catalog.providers;
        if known.is_empty() || known.contains(&provider) {
            return Some(provider);
        }
        let suggestion = closest(&provider, known.iter().map(String::as_str));
        let message = format!(
            "unknown provider `{}`; configured providers are {}",
            yaml::shorten(&provider, 40),
            known.join(", ")
        );
        self.error_suggest(node.start, message, suggestion);
        None
    }

    fn defaults(&mut self, node: Option<&Node>) -> Defaults {
        let mut defaults = builtin_defaults();
        let Some(node) = node.filter(|n| !n.is_null()) else {
            return defaults;
        };
        let Some(fields) = self.fields(node, DEFAULTS_KEYS, "in `defaults`", "`defaults`") else {
            return defaults;
        };
        if let Some(v) = fields.get("provider").and_then(|n| self.provider(n)) {
            defaults.provider = v;
        }
        if let Some(v) = fields.get("model").and_then(|n| self.text(n, "model")) {
            defaults.model = v;
        }
        self.sampling(
            &fields,
            &mut defaults.max_tokens,
            &mut defaults.temperature,
            &mut defaults.timeout_ms,
        );
        if let Some(n) = fields.get("retry") {
            defaults.retry = self.retry(n, defaults.retry);
        }
        defaults
    }

    /// `max_tokens`, `temperature` and `timeout_ms`, shared by `defaults` and steps.
    fn sampling(
        &mut self,
        fields: &Fields<'_>,
        max_tokens: &mut u32,
        temperature: &mut f32,
        timeout_ms: &mut u64,
    ) {
        if let Some(v) = fields
            .get("max_tokens")
            .and_then(|n| self.whole(n, "max_tokens", 1, u64::from(u32::MAX)))
        {
            *max_tokens = u32::try_from(v).unwrap_or(u32::MAX);
        }
        if let Some(v) = fields
            .get("temperature")
            .and_then(|n| self.number(n, "temperature", 0.0, 2.0))
        {
            // In 0..=2, so the narrowing only rounds.
            #[allow(clippy::cast_possible_truncation)]
            let v = v as f32;
            *temperature = v;
        }
        if let Some(v) = fields
            .get("timeout_ms")
            .and_then(|n| self.whole(n, "timeout_ms", 1, u64::MAX))
        {
            *timeout_ms = v;
        }
    }

    /// A `retry:` mapping; keys it leaves out come from `base`.
    fn retry(&mut self, node: &Node, base: RetryPolicy) -> RetryPolicy {
        let mut retry = base;
        let Some(fields) = self.fields(node, RETRY_KEYS, "in `retry`", "`retry`") else {
            return retry;
        };
        if let Some(v) = fields
            .get("attempts")
            .and_then(|n| self.whole(n, "attempts", 1, 10))
        {
            retry.attempts = u32::try_from(v).unwrap_or(1);
        }
        if let Some(v) = fields
            .get("backoff_ms")
            .and_then(|n| self.whole(n, "backoff_ms", 0, u64::MAX))
        {
            retry.backoff_ms = v;
        }
        let max_node = fields.get("max_backoff_ms");
        if let Some(v) = max_node.and_then(|n| self.whole(n, "max_backoff_ms", 0, u64::MAX)) {
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

    fn inputs(&mut self, node: &Node) -> Vec<(String, InputSpec)> {
        let mut inputs = Vec::new();
        if node.is_null() {
            return inputs;
        }
        let Value::Map(pairs) = &node.value else {
            self.error(
                node.start,
                format!(
                    "`inputs` must be a mapping of input names, e.g. `topic: {{ default: \"x\" }}`, found {}",
                    node.describe()
                ),
            );
            return inputs;
        };
        for (key, value) in pairs {
            let Some(name) = self.identifier(key, "input") else {
                continue;
            };
            if RESERVED_INPUTS.contains(&name.as_str()) {
                self.error(
                    key.start,
                    format!("`{name}` is reserved in templates and cannot be an input name; rename the input"),
                );
                continue;
            }
            let spec = if let Value::Map(_) = value.value {
                let place = format!("in input `{name}`");
                match self.fields(value, INPUT_KEYS, &place, "an input") {
                    Some(fields) => InputSpec {
                        description: fields
                            .get("description")
                            .and_then(|n| self.optional_text(n, "description")),
                        default: fields.get("default").map(|n| n.to_json()),
                    },
                    None => continue,
                }
            } else if value.is_null() {
                InputSpec {
                    description: None,
                    default: None,
                }
            } else {
                // A bare value is the default: `topic: event sourcing`.
                InputSpec {
                    description: None,
                    default: Some(value.to_json()),
                }
            };
            inputs.push((name, spec));
        }
        inputs
    }

    fn env(&mut self, node: &Node) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if node.is_null() {
            return env;
        }
        let Value::Map(pairs) = &node.value else {
            self.error(
                node.start,
                format!(
                    "`env` must be a mapping of names to default values, e.g. `API_BASE: \"http://localhost\"`, found {}",
                    node.describe()
                ),
            );
            return env;
        };
        for (key, value) in pairs {
            let Some(name) = self.identifier(key, "env") else {
                continue;
            };
            let default = match value.scalar() {
                Some(_) if value.is_null() => String::new(),
                Some(text) => text.to_owned(),
                None => {
                    self.error(
                        value.start,
                        format!(
                            "env `{name}` must have a text default, found {}",
                            value.describe()
                        ),
                    );
                    continue;
                }
            };
            env.push((name, default));
        }
        env
    }

    /// A name that templates can use as `{{ name }}` / `x.name`: `[A-Za-z_][A-Za-z0-9_]*`.
    fn identifier(&mut self, key: &Node, what: &str) -> Option<String> {
        let Some(name) = key.scalar().filter(|_| !key.is_null()) else {
            self.error(
                key.start,
                format!("{what} names must be plain names, found {}", key.describe()),
            );
            return None;
        };
        if is_identifier(name) {
            return Some(name.to_owned());
        }
        let fixed = slug(name, false);
        self.error_suggest(
            key.start,
            format!(
                "{what} name `{}` must start with a letter or `_` and contain only letters, digits and `_`, because templates refer to it by name",
                yaml::shorten(name, 40)
            ),
            (!fixed.is_empty()).then_some(fixed),
        );
        None
    }

    fn steps(
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
                let fixed = slug(name, false);
                self.error_suggest(
                    node.start,
                    format!(
                        "step name `{}` must start with a letter or `_` and contain only letters, digits and `_`, because templates refer to it as `steps.NAME.output`",
                        yaml::shorten(name, 40)
                    ),
                    (!fixed.is_empty()).then_some(fixed),
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
        let input_names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        let env_names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        let scope = Scope {
            by_name: &by_name,
            step_names: &step_names,
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

        let order = self.order(&edges, &names);
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
        let Some(fields) = self.fields(node, STEP_KEYS, &place, &format!("each step ({label})"))
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
            .and_then(|n| self.whole(n, "token_budget", 1, u64::from(u32::MAX)))
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

    fn depends_on<'n>(
        &mut self,
        node: &'n Node,
        index: usize,
        scope: &Scope<'_>,
        deps: &mut Vec<String>,
        edges: &mut Vec<Edge<'n>>,
    ) {
        let items: Vec<&Node> = match &node.value {
            Value::Seq(items) => items.iter().map(|n| &**n).collect(),
            Value::Scalar { .. } if node.is_null() => Vec::new(),
            Value::Scalar { .. } => vec![node],
            Value::Map(_) => {
                self.error(
                    node.start,
                    "`depends_on` must be a step name or a list of step names, found a mapping",
                );
                return;
            }
        };
        for item in items {
            let Some(name) = item.scalar().filter(|_| !item.is_null()) else {
                self.error(
                    item.start,
                    format!(
                        "`depends_on` entries must be step names, found {}",
                        item.describe()
                    ),
                );
                continue;
            };
            match scope.by_name.get(name) {
                None => self.error_suggest(
                    item.start,
                    format!(
                        "`depends_on` names an unknown step `{}`",
                        yaml::shorten(name, 40)
                    ),
                    self.suggest(name, scope.step_names.iter().copied()),
                ),
                Some(&j) if j == index => {
                    self.error(
                        item.start,
                        format!(
                            "step `{name}` cannot depend on itself; remove it from `depends_on`"
                        ),
                    );
                }
                Some(&j) => {
                    deps.push(name.to_owned());
                    edges.push(Edge {
                        to: j,
                        at: item.start,
                        template: None,
                    });
                }
            }
        }
    }

    /// Checks a template field: syntax, and that every variable it reads exists and is available
    /// to step `index`. Steps it reads from become dependencies.
    #[allow(clippy::too_many_arguments)]
    fn template_refs<'n>(
        &mut self,
        node: &'n Node,
        text: &str,
        field: &str,
        index: usize,
        scope: &Scope<'_>,
        deps: &mut Vec<String>,
        edges: &mut Vec<Edge<'n>>,
    ) {
        // Most prompts of a big file are plain text around a few `{{ }}`; text with no template
        // syntax at all needs no parse.
        if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
            return;
        }
        let refs = match template::references(text) {
            Ok(refs) => refs,
            Err(e) => {
                let at = self.locate(node, text, e.offset);
                self.error(
                    at,
                    format!(
                        "template {} in `{field}`: {}",
                        if e.message.starts_with("unknown ") {
                            "error"
                        } else {
                            "syntax error"
                        },
                        e.message
                    ),
                );
                return;
            }
        };
        let me = scope.step_names.get(index).copied();
        for path in &refs {
            let mut segments = path.split('.');
            let head = segments.next().unwrap_or_default();
            match head {
                "steps" => {
                    let Some(name) = segments.next() else {
                        let at = self.locate_reference(node, text, "steps");
                        self.error(
                            at,
                            format!(
                                "`steps` in `{field}` must be used as `steps.NAME.output`, with the \
                                 step's name written out, so that the dependency is known"
                            ),
                        );
                        continue;
                    };
                    let reference = format!("steps.{name}");
                    match scope.by_name.get(name) {
                        None => {
                            let at = self.locate_reference(node, text, &reference);
                            self.error_suggest(
                                at,
                                format!("`{field}` uses the output of an unknown step `{name}`"),
                                self.suggest(name, scope.step_names.iter().copied()),
                            );
                        }
                        Some(&j) if j == index => {
                            let at = self.locate_reference(node, text, &reference);
                            self.error(
                                at,
                                format!("step `{name}` cannot use its own output in `{field}`"),
                            );
                        }
                        Some(&j) if j > index => {
                            let at = self.locate_reference(node, text, &reference);
                            let me = me.unwrap_or("this step");
                            self.error(
                                at,
                                format!(
                                    "step `{me}` uses the output of `{name}`, which is defined \
                                     later in the file; move `{name}` above `{me}` (steps may \
                                     only use outputs of earlier steps)"
                                ),
                            );
                        }
                        Some(&j) => {
                            deps.push(name.to_owned());
                            edges.push(Edge {
                                to: j,
                                at: node.start,
                                template: Some(node),
                            });
                        }
                    }
                    if let Some(attr) = segments.next().filter(|a| *a != "output") {
                        let at = self.locate_reference(node, text, &format!("{reference}.{attr}"));
                        self.error_suggest(
                            at,
                            format!("`{reference}.{attr}` does not exist; a step provides only `{reference}.output`"),
                            Some(format!("{reference}.output")),
                        );
                    }
                }
                "inputs" | "env" => {
                    let Some(name) = segments.next() else {
                        continue;
                    };
                    let (declared, section) = if head == "inputs" {
                        (scope.inputs, "inputs")
                    } else {
                        (scope.env, "env")
                    };
                    if !declared.contains(&name) {
                        let at = self.locate_reference(node, text, &format!("{head}.{name}"));
                        self.error_suggest(
                            at,
                            format!("`{head}.{name}` in `{field}` is not declared; add `{name}` under `{section}:`"),
                            self.suggest(name, declared.iter().copied()),
                        );
                    }
                }
                _ => {
                    if !scope.inputs.contains(&head) && !BUILTIN_GLOBALS.contains(&head) {
                        let at = self.locate_reference(node, text, head);
                        self.error_suggest(
                            at,
                            format!(
                                "`{head}` in `{field}` is not an input; declare it under \
                                 `inputs:` (step outputs are `steps.NAME.output`, environment \
                                 values `env.NAME`)"
                            ),
                            self.suggest(head, scope.inputs.iter().copied()),
                        );
                    }
                }
            }
        }
    }

    fn index(&mut self) -> &SourceIndex<'_> {
        self.index
            .get_or_insert_with(|| SourceIndex::new(self.source))
    }

    /// Where `reference` (a variable path) first appears inside a `{{ }}`/`{% %}` block of the
    /// template, located in the YAML; the scalar's start if it cannot be found.
    fn locate_reference(&mut self, node: &Node, template: &str, reference: &str) -> Mark {
        match find_reference(template, reference) {
            Some(offset) => self.locate(node, template, offset),
            None => node.start,
        }
    }

    /// Maps byte `offset` of a template (the scalar's value) to a position in the YAML source.
    /// Literal blocks (`|`) map line for line; otherwise the text at `offset` is looked for in the
    /// scalar's source span (escapes and folding make the value differ from the source text).
    fn locate(&mut self, node: &Node, template: &str, offset: usize) -> Mark {
        let mut offset = offset.min(template.len());
        while !template.is_char_boundary(offset) {
            offset -= 1;
        }
        let rest_of_line: String = template[offset..]
            .split('\n')
            .next()
            .unwrap_or_default()
            .chars()
            .take(24)
            .collect();
        let index = self.index();
        let source = index.source();
        let found = |byte: usize| {
            let (line, column) = index.position_of_byte(byte);
            Mark {
                line,
                column,
                index: 0,
            }
        };

        if node.style() == Some(Style::Literal) {
            let before = &template[..offset];
            let lines_before = before.bytes().filter(|&b| b == b'\n').count();
            let column = before
                .rsplit('\n')
                .next()
                .unwrap_or_default()
                .chars()
                .count();
            let line = u32::try_from(lines_before)
                .ok()
                .and_then(|l| node.start.line.checked_add(l));
            if let Some(start) = line.and_then(|l| index.line_start(l)) {
                let indent = usize::try_from(node.start.column.saturating_sub(1)).unwrap_or(0);
                let line_text = source[start..].split('\n').next().unwrap_or_default();
                let byte = line_text
                    .char_indices()
                    .nth(indent + column)
                    .map(|(b, _)| start + b);
                if let Some(byte) = byte {
                    if source[byte..].starts_with(rest_of_line.as_str()) {
                        return found(byte);
                    }
                }
            }
        }

        let start = index.byte_of_char(node.start.index);
        let end = index.byte_of_char(node.end.index).max(start);
        let span = &source[start..end];
        let chars: Vec<(usize, char)> = rest_of_line.char_indices().collect();
        for len in (1..=chars.len()).rev() {
            let cut = chars.get(len).map_or(rest_of_line.len(), |(b, _)| *b);
            let needle = &rest_of_line[..cut];
            if needle.trim().is_empty() {
                break;
            }
            if let Some(p) = span.find(needle) {
                return found(start + p);
            }
        }
        node.start
    }

    /// Steps in dependency order (ties in file order), or None after reporting each cycle.
    fn order(
        &mut self,
        edges: &[Vec<Edge<'_>>],
        names: &[Option<StepName<'_>>],
    ) -> Option<Vec<usize>> {
        let n = edges.len();
        // Iterative depth-first search: a long chain of steps must not overflow the stack.
        const WHITE: u8 = 0;
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let mut colour = vec![WHITE; n];
        let mut cyclic = false;
        for root in 0..n {
            if colour[root] != WHITE {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            colour[root] = GREY;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(edge) = edges[node].get(*next).copied() {
                    *next += 1;
                    match colour[edge.to] {
                        WHITE => {
                            colour[edge.to] = GREY;
                            stack.push((edge.to, 0));
                        }
                        GREY => {
                            cyclic = true;
                            let from = stack.iter().position(|(s, _)| *s == edge.to).unwrap_or(0);
                            let name = |i: usize| {
                                names
                                    .get(i)
                                    .and_then(Option::as_ref)
                                    .map_or("?", |s| s.name.as_str())
                            };
                            let mut cycle: Vec<&str> =
                                stack[from..].iter().map(|(s, _)| name(*s)).collect();
                            cycle.push(name(edge.to));
                            let target = names.get(edge.to).and_then(Option::as_ref);
                            let at = match (edge.template, target) {
                                (Some(node), Some(target)) => {
                                    let text = node.scalar().unwrap_or_default();
                                    let reference = format!("steps.{}", target.name);
                                    self.locate_reference(node, text, &reference)
                                }
                                _ => edge.at,
                            };
                            self.error(
                                at,
                                format!(
                                    "dependency cycle: {}; remove one of these dependencies",
                                    show_cycle(&cycle)
                                ),
                            );
                        }
                        _ => {}
                    }
                } else {
                    colour[node] = BLACK;
                    stack.pop();
                }
            }
        }
        if cyclic {
            return None;
        }

        // Kahn's algorithm, always taking the earliest ready step in file order.
        let mut waiting: Vec<usize> = edges.iter().map(|e| unique_targets(e).len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, e) in edges.iter().enumerate() {
            for to in unique_targets(e) {
                dependents[to].push(i);
            }
        }
        let mut ready: BinaryHeap<Reverse<usize>> =
            (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for &d in &dependents[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(Reverse(d));
                }
            }
        }
        Some(order)
    }
}

/// `a → b → a`; a long cycle shows its first and last few steps.
fn show_cycle(cycle: &[&str]) -> String {
    if cycle.len() <= 12 {
        return cycle.join(" → ");
    }
    let head = cycle[..5].join(" → ");
    let tail = cycle[cycle.len() - 5..].join(" → ");
    format!("{head} → … ({} more) → {tail}", cycle.len() - 10)
}

fn unique_targets(edges: &[Edge<'_>]) -> Vec<usize> {
    let mut targets: Vec<usize> = edges.iter().map(|e| e.to).collect();
    targets.sort_unstable();
    targets.dedup();
    targets
}

/// What a step's templates and `depends_on` may refer to.
struct Scope<'s> {
    by_name: &'s HashMap<&'s str, usize>,
    /// Step names in file order (steps without a usable name left out).
    step_names: &'s [&'s str],
    inputs: &'s [&'s str],
    env: &'s [&'s str],
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name` turned into a valid name: other characters become `_`; for identifiers, a leading digit
/// gets a `_` in front.
fn slug(name: &str, allow_dash: bool) -> String {
    let mut out: String = name
        .trim()
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (allow_dash && c == '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !allow_dash && out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out.chars().all(|c| c == '_') {
        out.clear();
    }
    out
}

/// The candidate `word` was most likely meant to be, if any is close enough to suggest.
pub(crate) fn closest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<String> {
    let lower = word.to_lowercase();
    let length = lower.chars().count();
    let mut best: Option<(usize, f64, &str)> = None;
    // Suggestions are for typos among a handful of names; past a few thousand candidates the
    // comparisons would cost more than they help.
    for candidate in candidates.take(2_000) {
        if candidate == word {
            continue;
        }
        let folded = candidate.to_lowercase();
        let budget = (folded.chars().count().max(length) / 3).max(1);
        let prefix = length >= 3 && folded.starts_with(&lower);
        // The edit distance is at least the difference in length: skip hopeless candidates cheaply.
        if !prefix && folded.chars().count().abs_diff(length) > budget.max(3) {
            continue;
        }
        let distance = strsim::osa_distance(&lower, &folded);
        let similarity = strsim::jaro_winkler(&lower, &folded);
        if !(distance <= budget || similarity >= 0.88 || prefix) {
            continue;
        }
        let better = match best {
            None => true,
            Some((d, s, _)) => distance < d || (distance == d && similarity > s),
        };
        if better {
            best = Some((distance, similarity, candidate));
        }
    }
    best.map(|(_, _, c)| c.to_owned())
}

/// Byte offset of the first occurrence of variable path `reference` in `template` that is inside
/// a `{{ }}` or `{% %}` block and not part of a longer name.
fn find_reference(template: &str, reference: &str) -> Option<usize> {
    let bytes = template.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut fallback = None;
    for (at, _) in template.match_indices(reference) {
        let before_ok = at == 0 || {
            let b = bytes[at - 1];
            !is_name(b) && b != b'.'
        };
        let after_ok = bytes.get(at + reference.len()).is_none_or(|&b| !is_name(b));
        if !(before_ok && after_ok) {
            continue;
        }
        let prefix = &template[..at];
        let opened = prefix.rfind("{{").max(prefix.rfind("{%"));
        let closed = prefix.rfind("}}").max(prefix.rfind("%}"));
        if opened.is_some() && opened > closed {
            return Some(at);
        }
        fallback = fallback.or(Some(at));
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("promt", STEP_KEYS.iter().copied()).as_deref(),
            Some("prompt")
        );
        assert_eq!(
            closest("dependson", STEP_KEYS.iter().copied()).as_deref(),
            Some("depends_on")
        );
        assert_eq!(closest("zzz", STEP_KEYS.iter().copied()), None);
        assert_eq!(slug("my-step", false), "my_step");
        assert_eq!(slug("1st", false), "_1st");
    }

    #[test]
    fn references_are_found_inside_blocks() {
        assert_eq!(find_reference("topic: {{ topic }}", "topic"), Some(10));
        assert_eq!(
            find_reference("{{ topics }} {{ topic }}", "topic"),
            Some(16)
        );
    }
}
