//! Quadrant 2: the selected run's step timeline, and the parameters, inputs and output of the
//! step in focus.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use super::format;
use crate::live::{RunDetail, StepView};

/// Quadrant 2: one bar per step attempt on a shared time axis; retries and replays are their
/// own rows, marked.
#[component]
pub fn StepTimeline(
    detail: Signal<Option<RunDetail>>,
    selected_step: RwSignal<Option<String>>,
    now: Signal<DateTime<Utc>>,
) -> impl IntoView {
    view! {
        <section class="quad" aria-labelledby="steps-title" data-testid="step-timeline">
            <header class="quad-head">
                <h2 id="steps-title">"Steps"</h2>
                {move || match detail.get() {
                    Some(d) => view! {
                        <a class="muted" href=format!("/runs/{}", d.id) title="Open this run on its own page" data-testid="open-run">
                            {d.pipeline.clone()} " ↗"
                        </a>
                    }.into_any(),
                    None => view! { <span class="muted">"select a run"</span> }.into_any(),
                }}
            </header>
            {move || match detail.get() {
                None => view! {
                    <div class="empty small"><p>"Select a run to see its steps as they execute."</p></div>
                }.into_any(),
                Some(d) => view! { <Timeline detail=d selected_step now /> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn Timeline(
    detail: RunDetail,
    selected_step: RwSignal<Option<String>>,
    now: Signal<DateTime<Utc>>,
) -> impl IntoView {
    let steps = detail.steps.clone();
    let origin = detail.started_at;
    // The axis spans the run so far; bars are placed by start and length within it.
    let span_ms = {
        let steps = steps.clone();
        move || {
            let end = steps
                .read()
                .iter()
                .map(|s| end_of(s, now.get()))
                .max()
                .unwrap_or_else(|| now.get());
            (end - origin).num_milliseconds().max(1) as f64
        }
    };
    let span = Signal::derive(span_ms);
    view! {
        <ol class="timeline">
            <For each=move || steps.get() key=|s| s.key() let:step>
                <TimelineRow step origin span selected_step now />
            </For>
        </ol>
    }
}

fn end_of(step: &StepView, now: DateTime<Utc>) -> DateTime<Utc> {
    match step.duration_ms.get() {
        Some(ms) => step.started_at + chrono::TimeDelta::milliseconds(ms),
        None if step.status.get() == "running" => now,
        None => step.started_at,
    }
}

#[component]
fn TimelineRow(
    step: StepView,
    origin: DateTime<Utc>,
    span: Signal<f64>,
    selected_step: RwSignal<Option<String>>,
    now: Signal<DateTime<Utc>>,
) -> impl IntoView {
    let key = step.key();
    let is_selected = {
        let key = key.clone();
        move || selected_step.get().as_deref() == Some(key.as_str())
    };
    let status = step.status.clone();
    let geometry = {
        let step = step.clone();
        Signal::derive(move || {
            let start = (step.started_at - origin).num_milliseconds().max(0) as f64;
            let length = (end_of(&step, now.get()) - step.started_at)
                .num_milliseconds()
                .max(0) as f64;
            let span = span.get();
            (start / span * 100.0, (length / span * 100.0).max(0.6))
        })
    };
    let timer = {
        let step = step.clone();
        move || {
            let ms = step
                .duration_ms
                .get()
                .unwrap_or_else(|| (now.get() - step.started_at).num_milliseconds());
            format::duration_ms(ms)
        }
    };
    let tokens = {
        let (prompt, completion) = (step.prompt_tokens.clone(), step.completion_tokens.clone());
        let budget = step.token_budget;
        move || {
            let used = prompt.get().unwrap_or(0) + completion.get().unwrap_or(0);
            match budget {
                Some(b) => format!("{used} / {b} tok"),
                None => format!("{used} tok"),
            }
        }
    };
    let label = match (step.attempt, step.replay_of) {
        (_, Some(of)) => format!("{} · replay of #{of}", step.step),
        (1, None) => step.step.clone(),
        (n, None) => format!("{} · retry #{n}", step.step),
    };
    let select_key = key.clone();
    view! {
        <li
            class="tl-row"
            class:selected=is_selected
            data-testid="step-row"
            data-step=key.clone()
            data-status=move || status.get()
            on:click=move |_| selected_step.set(Some(select_key.clone()))
        >
            <div class="tl-label">
                <span class="tl-name">{label}</span>
                <span class="muted small mono">{format!("{} · {}", step.provider, step.model)}</span>
            </div>
            <div class="tl-track" aria-hidden="true">
                <div
                    class="tl-bar"
                    data-status={let s = step.status.clone(); move || s.get()}
                    style:left=move || format!("{:.2}%", geometry.get().0)
                    style:width=move || format!("{:.2}%", geometry.get().1)
                ></div>
            </div>
            <div class="tl-figures mono small">
                <span>{timer}</span>
                <span>{tokens}</span>
            </div>
        </li>
    }
}
