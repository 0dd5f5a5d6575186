//! The file as a whole: its top-level keys, `defaults:`, `inputs:` and `env:`; `steps:` is handed
//! to the `steps` module with what the steps need from the rest.

use std::rc::Rc;

use super::keys;
use super::{builtin_defaults, Checker, DEFAULT_MAX_PARALLEL};
use crate::model::{Defaults, InputSpec, Pipeline};
use crate::yaml::{self, Mark, Node, Value};

impl Checker<'_, '_> {
    pub(super) fn document(&mut self, root: Option<&Node>) -> Option<Pipeline> {
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
        let fields = self.fields(root, keys::TOP_LEVEL, "at the top level", "the pipeline")?;

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
                    self.error_renaming(
                        node.start,
                        format!(
                            "pipeline name `{}` may only use letters, digits, `-` and `_` (at most 100 characters)",
                            yaml::shorten(name, 40)
                        ),
                        name,
                        true,
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
        self.outline.name.clone_from(&name);
        self.outline.description.clone_from(&description);
        self.outline.inputs.clone_from(&inputs);
        self.outline.env = env.iter().map(|(name, _)| name.clone()).collect();
        let max_parallel = fields
            .get("max_parallel")
            .and_then(|n| self.whole(n, "max_parallel", keys::MAX_PARALLEL))
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

    fn defaults(&mut self, node: Option<&Node>) -> Defaults {
        let mut defaults = builtin_defaults();
        let Some(node) = node.filter(|n| !n.is_null()) else {
            return defaults;
        };
        let Some(fields) = self.fields(node, keys::DEFAULTS, "in `defaults`", "`defaults`") else {
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

    fn inputs(&mut self, node: &Node) -> Vec<(String, InputSpec)> {
        let mut inputs = Vec::new();
        let expected =
            "`inputs` must be a mapping of input names, e.g. `topic: { default: \"x\" }`";
        for (key, value) in self.named(node, expected) {
            let Some(name) = self.identifier(key, "input") else {
                continue;
            };
            if keys::RESERVED_INPUTS.contains(&name.as_str()) {
                self.error(
                    key.start,
                    format!("`{name}` is reserved in templates and cannot be an input name; rename the input"),
                );
                continue;
            }
            let spec = if let Value::Map(_) = value.value {
                let place = format!("in input `{name}`");
                match self.fields(value, keys::INPUT, &place, "an input") {
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
        let expected = "`env` must be a mapping of names to default values, e.g. `API_BASE: \"http://localhost\"`";
        for (key, value) in self.named(node, expected) {
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

    /// The entries of `inputs:` or `env:`: none when it is empty, and none after reporting a
    /// value that is not a mapping (`expected` says what it should be).
    fn named<'n>(&mut self, node: &'n Node, expected: &str) -> &'n [(Rc<Node>, Rc<Node>)] {
        match &node.value {
            _ if node.is_null() => &[],
            Value::Map(pairs) => pairs,
            _ => {
                self.error(node.start, format!("{expected}, found {}", node.describe()));
                &[]
            }
        }
    }
}
