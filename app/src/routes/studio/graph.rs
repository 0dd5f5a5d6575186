//! The step graph: the pipeline's dependency DAG as the validator outlines it, redrawn as the
//! text changes. Columns are dependency depth, so a step is always right of what it waits for;
//! a cycle's edges are red. Clicking a step puts the cursor on it.

use std::collections::HashMap;

use leptos::prelude::*;

use super::editor::EditorLink;
use crate::models::{Check, GraphStep};

const COLUMN: f64 = 190.0;
const ROW: f64 = 58.0;
const NODE_W: f64 = 160.0;
const NODE_H: f64 = 42.0;
const PAD: f64 = 8.0;

/// Where each step goes: (column, row).
fn layout(steps: &[GraphStep]) -> Vec<(usize, usize)> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // Longest path from a step without dependencies.
    let mut depth = vec![0usize; steps.len()];
    let mut settled = false;
    for _ in 0..=steps.len() {
        let mut changed = false;
        for (i, step) in steps.iter().enumerate() {
            let d = step
                .depends_on
                .iter()
                .filter_map(|dep| index.get(dep.as_str()))
                .map(|&j| depth[j] + 1)
                .max()
                .unwrap_or(0);
            if d != depth[i] {
                depth[i] = d;
                changed = true;
            }
        }
        if !changed {
            settled = true;
            break;
        }
    }
    if !settled {
        // A cycle has no longest path: place each step after the dependencies written above it.
        for i in 0..steps.len() {
            depth[i] = steps[i]
                .depends_on
                .iter()
                .filter_map(|dep| index.get(dep.as_str()))
                .filter(|&&j| j < i)
                .map(|&j| depth[j] + 1)
                .max()
                .unwrap_or(0);
        }
    }
    let mut rows: HashMap<usize, usize> = HashMap::new();
    depth
        .into_iter()
        .map(|column| {
            let row = rows.entry(column).or_default();
            *row += 1;
            (column, *row - 1)
        })
        .collect()
}

/// Whether `from → to` is an edge of `cycle` (listed in order, closing back to its first step).
fn in_cycle(cycle: &[String], from: &str, to: &str) -> bool {
    let n = cycle.len();
    (0..n).any(|i| cycle[i] == from && cycle[(i + 1) % n] == to)
        || (0..n).any(|i| cycle[i] == to && cycle[(i + 1) % n] == from)
}

#[component]
pub fn StepGraph(check: ReadSignal<Option<Check>>, link: EditorLink) -> impl IntoView {
    move || {
        let check = check.get()?;
        if check.steps.is_empty() {
            return Some(
                view! { <p class="muted small graph-empty">"Steps appear here as you write them."</p> }
                    .into_any(),
            );
        }
        let places = layout(&check.steps);
        let columns = places.iter().map(|p| p.0).max().unwrap_or(0) + 1;
        let rows = places.iter().map(|p| p.1).max().unwrap_or(0) + 1;
        let width = columns as f64 * COLUMN - (COLUMN - NODE_W) + 2.0 * PAD;
        let height = rows as f64 * ROW - (ROW - NODE_H) + 2.0 * PAD;
        let at = |i: usize| {
            let (c, r) = places[i];
            (PAD + c as f64 * COLUMN, PAD + r as f64 * ROW)
        };
        let index: HashMap<&str, usize> = check
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut edges = Vec::new();
        for (i, step) in check.steps.iter().enumerate() {
            for dep in &step.depends_on {
                let Some(&j) = index.get(dep.as_str()) else {
                    continue;
                };
                let (fx, fy) = at(j);
                let (tx, ty) = at(i);
                let (x1, y1) = (fx + NODE_W, fy + NODE_H / 2.0);
                let (x2, y2) = (tx, ty + NODE_H / 2.0);
                // A backwards edge (only in a cycle) bends around instead of crossing the nodes.
                let bend = ((x2 - x1).abs() / 2.0).max(30.0);
                let d = format!(
                    "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
                    x1 + bend,
                    x2 - bend
                );
                let cyclic = in_cycle(&check.cycle, dep, &step.name);
                edges.push(view! {
                    <path d=d class="edge" class:cyclic=cyclic marker-end="url(#arrow)">
                        <title>{format!("{} waits for {dep}", step.name)}</title>
                    </path>
                });
            }
        }
        let nodes = check
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let (x, y) = at(i);
                let line = step.line;
                let cyclic = check.cycle.contains(&step.name);
                let sub = format!("{} · {}", step.provider, step.model);
                view! {
                    <g
                        class="node"
                        class:cyclic=cyclic
                        transform=format!("translate({x:.1},{y:.1})")
                        role="button"
                        tabindex="0"
                        data-testid="graph-node"
                        data-step=step.name.clone()
                        aria-label=format!("Step {}, line {line}", step.name)
                        on:click=move |_| link.goto.set(Some((line, 1)))
                        on:keydown=move |ev| {
                            if ev.key() == "Enter" {
                                link.goto.set(Some((line, 1)));
                            }
                        }
                    >
                        <rect width=NODE_W height=NODE_H rx="6" />
                        <text x="10" y="18" class="node-name">{clip(&step.name, 20)}</text>
                        <text x="10" y="33" class="node-sub">{clip(&sub, 26)}</text>
                        <title>{format!("{} — {sub}, line {line}", step.name)}</title>
                    </g>
                }
            })
            .collect_view();
        Some(
            view! {
                <svg
                    class="step-graph"
                    data-testid="step-graph"
                    viewBox=format!("0 0 {width:.0} {height:.0}")
                    width=format!("{width:.0}")
                    height=format!("{height:.0}")
                    role="group"
                    aria-label="Step graph"
                >
                    <defs>
                        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
                        </marker>
                    </defs>
                    {edges}
                    {nodes}
                </svg>
            }
            .into_any(),
        )
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, deps: &[&str]) -> GraphStep {
        GraphStep {
            name: name.into(),
            line: 1,
            depends_on: deps.iter().map(|d| (*d).into()).collect(),
            provider: "p".into(),
            model: "m".into(),
        }
    }

    #[test]
    fn a_step_is_right_of_what_it_waits_for() {
        let steps = [
            step("a", &[]),
            step("b", &["a"]),
            step("c", &["a"]),
            step("d", &["b", "c"]),
        ];
        assert_eq!(layout(&steps), vec![(0, 0), (1, 0), (1, 1), (2, 0)]);
    }

    #[test]
    fn a_cycle_is_laid_out_and_its_edges_are_known() {
        let steps = [step("a", &["b"]), step("b", &["a"])];
        assert_eq!(layout(&steps), vec![(0, 0), (1, 0)]);
        let cycle = ["a".to_owned(), "b".to_owned()];
        assert!(in_cycle(&cycle, "a", "b") && in_cycle(&cycle, "b", "a"));
        assert!(!in_cycle(&cycle, "a", "c"));
    }
}
