//! What a step refers to: the steps its `depends_on` names and the inputs, env values and step
//! outputs its templates read, each checked against what exists. Steps referred to become the
//! step's dependencies and edges of the dependency graph.

use std::collections::HashMap;

use super::graph::Edge;
use super::Checker;
use crate::template::{self, BUILTIN_GLOBALS};
use crate::yaml::{self, Node, Value};

/// What a step's templates and `depends_on` may refer to.
pub(super) struct Scope<'s> {
    pub(super) by_name: &'s HashMap<&'s str, usize>,
    /// Step names in file order (steps without a usable name left out).
    pub(super) step_names: &'s [&'s str],
    /// Each step's name by its position in the file (`None` without a usable name).
    pub(super) labels: &'s [Option<&'s str>],
    pub(super) inputs: &'s [&'s str],
    pub(super) env: &'s [&'s str],
}

impl Checker<'_, '_> {
    pub(super) fn depends_on<'n>(
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
    pub(super) fn template_refs<'n>(
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
        let me = scope.labels.get(index).copied().flatten();
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
                            // Not an edge (steps run in file order), but what the author meant:
                            // the outline's graph shows it. The step itself is refused.
                            deps.push(name.to_owned());
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
}
