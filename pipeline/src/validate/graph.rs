//! The dependency graph of the steps: every cycle reported where one of its dependencies is
//! written, and otherwise the order steps are listed in (dependencies first, ties in file order).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Checker;
use crate::yaml::{Mark, Node};

/// An edge of the dependency graph: the step depended on, and where the dependency is written.
#[derive(Clone, Copy)]
pub(super) struct Edge<'n> {
    pub(super) to: usize,
    pub(super) at: Mark,
    /// For a dependency implied by a template: the template, to point at the reference inside it
    /// if the edge is part of a cycle (only then, since finding it costs a search).
    pub(super) template: Option<&'n Node>,
}

impl Checker<'_, '_> {
    /// Steps in dependency order (ties in file order), or None after reporting each cycle.
    /// `edges[i]` are the dependencies of step `i`, `names[i]` its name if it has a usable one.
    pub(super) fn order(
        &mut self,
        edges: &[Vec<Edge<'_>>],
        names: &[Option<&str>],
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
                            let name = |i: usize| names.get(i).copied().flatten();
                            let mut cycle: Vec<&str> = stack[from..]
                                .iter()
                                .map(|(s, _)| name(*s).unwrap_or("?"))
                                .collect();
                            if self.outline.cycle.is_empty() {
                                self.outline.cycle =
                                    cycle.iter().map(|s| (*s).to_owned()).collect();
                            }
                            cycle.push(name(edge.to).unwrap_or("?"));
                            let at = match (edge.template, name(edge.to)) {
                                (Some(node), Some(target)) => {
                                    let text = node.scalar().unwrap_or_default();
                                    let reference = format!("steps.{target}");
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
