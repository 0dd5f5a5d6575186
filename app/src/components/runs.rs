//! Quadrant 1: the runs grid — active runs first, then recent finished ones — with progress,
//! the current step, a status badge, a ticking elapsed time and pause / resume / cancel.

use chrono::Utc;
use leptos::{prelude::*, task::spawn_local};
use uuid::Uuid;

use super::{
    overlays::{MenuTarget, Overlays},
    panels::CollapseToggle,
};
use crate::{
    format,
    functions::control_run,
    live::{LiveStore, RunView},
    models::{RunAction, RunStatus},
};

#[component]
pub fn RunsGrid(
    store: LiveStore,
    selected: RwSignal<Option<Uuid>>,
    /// Seconds ticking in the browser, for elapsed times.
    now: Signal<chrono::DateTime<Utc>>,
) -> impl IntoView {
    let runs = store.runs.clone();
    let count = {
        let runs = runs.clone();
        move || runs.read().iter().filter(|r| r.is_active()).count()
    };
    let empty = {
        let runs = runs.clone();
        move || runs.read().is_empty()
    };
    view! {
        <section class="quad" data-panel="runs" aria-labelledby="runs-title" data-testid="runs-grid">
            <header class="quad-head">
                <CollapseToggle panel="runs" />
                <h2 id="runs-title">"Pipelines"</h2>
                <span class="muted" data-testid="runs-active">{move || format!("{} active", count())}</span>
            </header>
            <Show when=empty>
                <div class="empty" data-testid="no-runs">
                    <h3>"No pipeline runs yet"</h3>
                    <p>
                        "Runs appear here the moment they start: their steps, the exact prompts, the "
                        "responses streaming back, tokens, cost and latency."
                    </p>
                </div>
            </Show>
            <ul class="runs" role="listbox" aria-label="Runs">
                <For each=move || runs.get() key=|r| r.id let:run>
                    <RunRow run selected now />
                </For>
            </ul>
        </section>
    }
}

#[component]
fn RunRow(
    run: RunView,
    selected: RwSignal<Option<Uuid>>,
    now: Signal<chrono::DateTime<Utc>>,
) -> impl IntoView {
    let id = run.id;
    let status = run.status.clone();
    let is_selected = move || selected.get() == Some(id);
    let progress = {
        let (done, total) = (run.steps_done.clone(), run.steps_total.clone());
        Signal::derive(move || {
            let total = total.get();
            if total <= 0 {
                return None;
            }
            Some((
                done.get().min(total) as f64 / total as f64 * 100.0,
                done.get(),
                total,
            ))
        })
    };
    let elapsed = {
        let completed = run.completed_at.clone();
        let started = run.started_at;
        move || {
            let end = completed.get().unwrap_or_else(|| now.get());
            format::duration_ms((end - started).num_milliseconds().max(0))
        }
    };
    let step_text = {
        let (current, status) = (run.current_step.clone(), status.clone());
        move || match (current.get(), status.get()) {
            (Some(step), _) => step,
            (None, RunStatus::Paused) => "paused between steps".into(),
            (None, RunStatus::Running | RunStatus::Pending) => "starting…".into(),
            (None, _) => String::new(),
        }
    };
    let tokens = run.tokens.clone();
    let cost = run.cost_usd.clone();
    let error = run.error.clone();
    let controls = run.source == "engine";
    let overlays = use_context::<Overlays>();
    view! {
        <li
            class="run"
            class:selected=is_selected
            role="option"
            aria-selected=move || is_selected().to_string()
            data-testid="run"
            data-run-id=id.to_string()
            data-status=move || status.get().as_str()
            on:click=move |_| selected.set(Some(id))
            on:contextmenu=move |ev| {
                if let Some(overlays) = overlays {
                    overlays.open_menu(&ev, MenuTarget::Run(id));
                }
            }
        >
            <div class="run-line">
                <span class="run-name">{run.pipeline.clone()}</span>
                <StatusBadge status=Signal::derive({ let s = run.status.clone(); move || s.get() }) />
                <span class="run-elapsed mono">{elapsed}</span>
            </div>
            <div class="progress" aria-hidden="true">
                <div
                    class="progress-bar"
                    class:indeterminate=move || progress.get().is_none()
                    style:width=move || progress.get().map_or("100%".into(), |(p, _, _)| format!("{p:.1}%"))
                ></div>
            </div>
            <div class="run-line small">
                <span class="run-step mono" title="Current step">{step_text}</span>
                <span class="muted mono">
                    {move || progress.get().map(|(_, d, t)| format!("{d}/{t} steps")).unwrap_or_default()}
                </span>
                <span class="mono">{move || format::count(tokens.get())} " tok"</span>
                <span class="mono">{move || format::usd(cost.get())}</span>
            </div>
            {move || error.get().map(|e| view! { <div class="run-error" title=e.clone()>{e.clone()}</div> })}
            <Show when=move || controls>
                <RunControls id status=Signal::derive({ let s = run.status.clone(); move || s.get() }) />
            </Show>
        </li>
    }
}

#[component]
pub fn StatusBadge(#[prop(into)] status: Signal<RunStatus>) -> impl IntoView {
    view! {
        <span class="badge" data-status=move || status.get().as_str() data-testid="status">
            {move || status.get().label()}
        </span>
    }
}

#[component]
fn RunControls(id: Uuid, status: Signal<RunStatus>) -> impl IntoView {
    let problem = RwSignal::new(None::<String>);
    let act = move |action: RunAction| {
        spawn_local(async move {
            problem.set(control_run(id, action).await.err().map(|e| e.to_string()));
        });
    };
    let active = move || status.get().is_active();
    view! {
        <Show when=active>
            <div class="run-controls" on:click=|e| e.stop_propagation()>
                <Show
                    when=move || status.get() == RunStatus::Paused
                    fallback=move || view! {
                        <button class="btn small" data-testid="pause" on:click=move |_| act(RunAction::Pause)>"Pause"</button>
                    }
                >
                    <button class="btn small" data-testid="resume" on:click=move |_| act(RunAction::Resume)>"Resume"</button>
                </Show>
                <button class="btn small danger" data-testid="cancel" on:click=move |_| act(RunAction::Cancel)>"Cancel"</button>
                {move || problem.get().map(|p| view! { <span class="error-text small" role="alert">{p}</span> })}
            </div>
        </Show>
    }
}
