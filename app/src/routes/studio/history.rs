//! A pipeline's versions: who saved what when, the difference between any two (or a version and
//! the text being edited), and *Restore*, which puts an old text in the editor to be saved as
//! the next version. The conflict view of a save uses the same difference.

use leptos::{either::Either, prelude::*, task::spawn_local};

use super::editor::EditorLink;
use crate::{
    format,
    functions::open_pipeline,
    models::{PipelineText, PipelineVersion},
};

/// One line of a difference.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Same(String),
    Removed(String),
    Added(String),
}

/// Line pairs compared at most: beyond, the texts are shown whole instead (a quadratic table).
const DIFF_CELLS: usize = 4_000_000;

/// The lines of `old` and `new`, the shared ones once (longest common subsequence); None when
/// the texts are too large to compare line by line.
pub fn diff(old: &str, new: &str) -> Option<Vec<Line>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Common head and tail first: most edits touch a few lines in the middle.
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    if ma.len().saturating_mul(mb.len()) > DIFF_CELLS {
        return None;
    }
    // lcs[i][j]: the common subsequence length of ma[i..] and mb[j..].
    let w = mb.len() + 1;
    let mut lcs = vec![0u32; (ma.len() + 1) * w];
    for i in (0..ma.len()).rev() {
        for j in (0..mb.len()).rev() {
            lcs[i * w + j] = if ma[i] == mb[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let mut out: Vec<Line> = a[..head].iter().map(|l| Line::Same((*l).into())).collect();
    let (mut i, mut j) = (0, 0);
    while i < ma.len() || j < mb.len() {
        if i < ma.len() && j < mb.len() && ma[i] == mb[j] {
            out.push(Line::Same(ma[i].into()));
            i += 1;
            j += 1;
        } else if i < ma.len() && (j == mb.len() || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
            out.push(Line::Removed(ma[i].into()));
            i += 1;
        } else {
            out.push(Line::Added(mb[j].into()));
            j += 1;
        }
    }
    out.extend(a[a.len() - tail..].iter().map(|l| Line::Same((*l).into())));
    Some(out)
}

/// A difference, unchanged runs of more than six lines folded to their count.
#[component]
pub fn DiffView(old: String, new: String) -> impl IntoView {
    let Some(lines) = diff(&old, &new) else {
        return Either::Left(view! {
            <p class="muted small">"These texts are too large to compare line by line."</p>
        });
    };
    let changed = lines.iter().filter(|l| !matches!(l, Line::Same(_))).count();
    let mut rows = Vec::new();
    let mut same = Vec::new();
    let flush = |same: &mut Vec<String>, rows: &mut Vec<AnyView>, last: bool| {
        let n = same.len();
        if n > 6 {
            let (head, tail) = if rows.is_empty() {
                (0, 3)
            } else if last {
                (3, 0)
            } else {
                (3, 3)
            };
            for l in &same[..head] {
                rows.push(
                    view! { <div class="diff-line same">{format!("  {l}")}</div> }.into_any(),
                );
            }
            rows.push(view! { <div class="diff-fold muted">{format!("⋯ {} unchanged lines", n - head - tail)}</div> }.into_any());
            for l in &same[n - tail..] {
                rows.push(
                    view! { <div class="diff-line same">{format!("  {l}")}</div> }.into_any(),
                );
            }
        } else {
            for l in same.iter() {
                rows.push(
                    view! { <div class="diff-line same">{format!("  {l}")}</div> }.into_any(),
                );
            }
        }
        same.clear();
    };
    for line in lines {
        match line {
            Line::Same(l) => same.push(l),
            Line::Removed(l) => {
                flush(&mut same, &mut rows, false);
                rows.push(
                    view! { <div class="diff-line removed">{format!("- {l}")}</div> }.into_any(),
                );
            }
            Line::Added(l) => {
                flush(&mut same, &mut rows, false);
                rows.push(
                    view! { <div class="diff-line added">{format!("+ {l}")}</div> }.into_any(),
                );
            }
        }
    }
    flush(&mut same, &mut rows, true);
    Either::Right(view! {
        <p class="muted small" data-testid="diff-summary">
            {if changed == 0 { "No difference.".to_owned() } else { format!("{changed} lines differ.") }}
        </p>
        <pre class="diff mono" data-testid="diff">{rows}</pre>
    })
}

/// The versions of `name`, newest first; pick two to compare, or one against the editor's text.
#[component]
pub fn History(
    name: String,
    versions: Vec<PipelineVersion>,
    current: Signal<String>,
    link: EditorLink,
) -> impl IntoView {
    // 0 stands for the text being edited.
    let newest = versions.first().map(|v| v.version).unwrap_or(0);
    let left = RwSignal::new(versions.get(1).map(|v| v.version).unwrap_or(newest));
    let right = RwSignal::new(0u32);
    let texts = RwSignal::new(std::collections::HashMap::<u32, String>::new());
    let failed = RwSignal::new(None::<String>);
    let name = StoredValue::new(name);
    // Fetches the versions compared, once each.
    Effect::new(move |_| {
        for version in [left.get(), right.get()] {
            if version == 0 || texts.with_untracked(|t| t.contains_key(&version)) {
                continue;
            }
            let name = name.get_value();
            spawn_local(async move {
                match open_pipeline(name, Some(version)).await {
                    Ok(PipelineText { yaml, .. }) => texts.update(|t| {
                        t.insert(version, yaml);
                    }),
                    Err(e) => failed.set(Some(e.to_string())),
                }
            });
        }
    });
    let text_of = move |version: u32| {
        if version == 0 {
            Some(current.get())
        } else {
            texts.with(|t| t.get(&version).cloned())
        }
    };
    let options = StoredValue::new(versions.clone());
    let choice = move |value: RwSignal<u32>, with_current: bool| {
        view! {
            <select
                class="mono"
                on:change=move |ev| value.set(event_target_value(&ev).parse().unwrap_or(0))
                prop:value=move || value.get().to_string()
            >
                {with_current.then(|| view! { <option value="0">"the text being edited"</option> })}
                {options.get_value().into_iter().map(|v| view! {
                    <option value=v.version.to_string()>
                        {format!("v{}{} · {}", v.version, if v.draft { " (draft)" } else { "" }, format::date_time(&v.saved_at))}
                    </option>
                }).collect_view()}
            </select>
        }
    };
    view! {
        <section class="history" data-testid="history">
            <ol class="versions">
                {versions.into_iter().map(|v| {
                    let version = v.version;
                    view! {
                        <li data-testid="version" data-version=version.to_string()>
                            <span class="mono">"v" {version}</span>
                            {v.draft.then(|| view! { <span class="badge draft">"draft"</span> })}
                            <span class="muted small">{format::date_time(&v.saved_at)}</span>
                            <span class="note">{v.note.clone()}</span>
                            <button class="btn small" on:click=move |_| { left.set(version); right.set(0); }>"Compare"</button>
                            <button
                                class="btn small"
                                data-testid="restore"
                                title="Put this text in the editor; saving makes it the next version"
                                on:click=move |_| {
                                    if let Some(text) = texts.with_untracked(|t| t.get(&version).cloned()) {
                                        link.replace.set(Some(text));
                                    } else {
                                        let name = name.get_value();
                                        spawn_local(async move {
                                            match open_pipeline(name, Some(version)).await {
                                                Ok(p) => link.replace.set(Some(p.yaml)),
                                                Err(e) => failed.set(Some(e.to_string())),
                                            }
                                        });
                                    }
                                }
                            >"Restore"</button>
                        </li>
                    }
                }).collect_view()}
            </ol>
            <div class="compare">
                {choice(left, false)} <span class="muted">"→"</span> {choice(right, true)}
            </div>
            {move || failed.get().map(|e| view! { <div class="run-error" role="alert">{e}</div> })}
            {move || match (text_of(left.get()), text_of(right.get())) {
                (Some(old), Some(new)) => Either::Left(view! { <DiffView old new /> }),
                _ => Either::Right(view! { <p class="muted small">"loading…"</p> }),
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_is_removed_then_added_and_the_rest_kept() {
        let d = diff("a\nb\nc\n", "a\nB\nc\nd\n").expect("small");
        assert_eq!(
            d,
            vec![
                Line::Same("a".into()),
                Line::Removed("b".into()),
                Line::Added("B".into()),
                Line::Same("c".into()),
                Line::Added("d".into()),
            ]
        );
    }

    #[test]
    fn equal_texts_have_no_change_and_huge_ones_are_not_compared() {
        assert!(diff("x\ny", "x\ny")
            .expect("small")
            .iter()
            .all(|l| matches!(l, Line::Same(_))));
        let big_a: String = (0..3000).map(|i| format!("a{i}\n")).collect();
        let big_b: String = (0..3000).map(|i| format!("b{i}\n")).collect();
        assert!(diff(&big_a, &big_b).is_none());
    }
}
