//! Ctrl+P, the quick switcher: go to a pipeline or a run by typing part of its name or id.

use leptos::{either::Either, prelude::*};
use uuid::Uuid;

use super::{overlays::Overlays, runs::StatusBadge};
use crate::live::{LiveStore, RunView};

/// One thing the quick switcher can jump to.
#[derive(Clone)]
pub(crate) enum Entry {
    Pipeline {
        name: String,
        runs: usize,
        /// Its run that started last, and when.
        newest: (Uuid, chrono::DateTime<chrono::Utc>),
    },
    Run(Box<RunView>),
}

impl Entry {
    fn target(&self) -> Uuid {
        match self {
            Entry::Pipeline { newest, .. } => newest.0,
            Entry::Run(run) => run.id,
        }
    }
}

/// Ctrl+P: type part of a pipeline name or a run id, pick with the arrows and Enter. A pipeline
/// opens its newest run. The field is in the first load, so what is typed at once is kept; the
/// list's view is in its own WASM chunk, fetched when the page is idle or the first time the
/// switcher opens.
#[component]
pub fn QuickSwitcher(overlays: Overlays, store: LiveStore, pick: Callback<Uuid>) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let cursor = RwSignal::new(0usize);
    let entries = Signal::derive(move || {
        if !overlays.switcher.get() {
            return Vec::new();
        }
        let q = query.get().to_lowercase();
        let runs = store.runs.get();
        let mut pipelines: Vec<Entry> = Vec::new();
        for run in &runs {
            match pipelines
                .iter_mut()
                .find(|e| matches!(e, Entry::Pipeline { name, .. } if *name == run.pipeline))
            {
                Some(Entry::Pipeline { runs, newest, .. }) => {
                    *runs += 1;
                    if run.started_at > newest.1 {
                        *newest = (run.id, run.started_at);
                    }
                }
                _ => pipelines.push(Entry::Pipeline {
                    name: run.pipeline.clone(),
                    runs: 1,
                    newest: (run.id, run.started_at),
                }),
            }
        }
        pipelines
            .into_iter()
            .filter(
                |e| matches!(e, Entry::Pipeline { name, .. } if name.to_lowercase().contains(&q)),
            )
            .chain(
                runs.into_iter()
                    .filter(|r| {
                        r.pipeline.to_lowercase().contains(&q) || r.id.to_string().starts_with(&q)
                    })
                    .map(|r| Entry::Run(Box::new(r))),
            )
            .take(30)
            .collect::<Vec<_>>()
    });
    let choose = Callback::new(move |index: usize| {
        if let Some(entry) = entries.with_untracked(|e| e.get(index).cloned()) {
            overlays.switcher.set(false);
            pick.run(entry.target());
        }
    });
    let keys = move |ev: leptos::ev::KeyboardEvent| {
        let len = entries.with_untracked(Vec::len).max(1);
        match ev.key().as_str() {
            "ArrowDown" => {
                ev.prevent_default();
                cursor.update(|c| *c = (*c + 1) % len);
            }
            "ArrowUp" => {
                ev.prevent_default();
                cursor.update(|c| *c = (*c + len - 1) % len);
            }
            "Enter" => {
                ev.prevent_default();
                choose.run(cursor.get_untracked());
            }
            "Escape" => overlays.switcher.set(false),
            _ => {}
        }
    };
    // Opening starts afresh, with the field focused at once, so no keystroke is lost (effects
    // run after the field is in the page).
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if overlays.switcher.get() {
            query.set(String::new());
            cursor.set(0);
            if let Some(input) = input.get() {
                let _ = input.focus();
            }
        }
    });
    view! {
        <Show when=move || overlays.switcher.get()>
            <div class="scrim" on:click=move |_| overlays.switcher.set(false)>
                <div class="dialog switcher" role="dialog" aria-label="Go to a pipeline or run" data-testid="switcher" on:click=|e| e.stop_propagation()>
                    <input
                        node_ref=input
                        type="text"
                        placeholder="Go to a pipeline or run…"
                        aria-label="Pipeline name or run id"
                        data-testid="switcher-input"
                        autocomplete="off"
                        spellcheck="false"
                        prop:value=move || query.get()
                        on:input=move |ev| {
                            query.set(event_target_value(&ev));
                            cursor.set(0);
                        }
                        on:keydown=keys
                    />
                    <ul class="switcher-list" role="listbox">
                        <Suspense fallback=|| ()>
                            {Suspend::new(async move { switcher_list(entries, cursor, choose).await })}
                        </Suspense>
                    </ul>
                    <p class="muted small">"↑↓ to choose · Enter to open · Esc to close"</p>
                </div>
            </div>
        </Show>
    }
}

/// The switcher's entries, `cursor` the current one.
#[lazy]
pub(crate) fn switcher_list(
    entries: Signal<Vec<Entry>>,
    cursor: RwSignal<usize>,
    choose: Callback<usize>,
) -> AnyView {
    view! {
        {move || entries.get().into_iter().enumerate().map(|(i, entry)| {
            let current = move || cursor.get() == i;
            let body = match entry {
                Entry::Pipeline { name, runs, .. } => Either::Left(view! {
                    <span class="kind">"pipeline"</span>
                    <span class="run-name">{name}</span>
                    <span class="muted small">{format!("{runs} run{}", if runs == 1 { "" } else { "s" })}</span>
                }),
                Entry::Run(run) => Either::Right(view! {
                    <span class="kind">"run"</span>
                    <span class="run-name">{run.pipeline.clone()}</span>
                    <span class="mono muted small">{run.id.to_string()[..8].to_owned()}</span>
                    <StatusBadge status=Signal::derive({ let s = run.status.clone(); move || s.get() }) />
                }),
            };
            view! {
                <li
                    role="option"
                    aria-selected=move || current().to_string()
                    class:current=current
                    data-testid="switcher-entry"
                    on:mousemove=move |_| cursor.set(i)
                    on:click=move |_| choose.run(i)
                >
                    {body}
                </li>
            }
        }).collect_view()}
    }
    .into_any()
}
