//! Quadrant 2: the selected run's step timeline, and the parameters, inputs and output of the
//! step in focus.

use chrono::{DateTime, Utc};
use leptos::{either::Either, prelude::*, task::spawn_local};

use super::{
    overlays::{MenuTarget, Overlays},
    panels::CollapseToggle,
};
use crate::{
    format,
    functions::get_run_log,
    live::{use_live, RunDetail, StepView},
    models::{logs::run_logs_href, AttemptStatus},
};

/// What quadrant 2 shows: the timeline, or the run's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepsTab {
    Timeline,
    Log,
}

/// Quadrant 2: one bar per step attempt on a shared time axis (retries and replays are their
/// own rows, marked), the focused step's parameters, inputs and output; or the run's log.
#[component]
pub fn StepTimeline(
    detail: Signal<Option<RunDetail>>,
    selected_step: RwSignal<Option<String>>,
    now: Signal<DateTime<Utc>>,
    tab: RwSignal<StepsTab>,
) -> impl IntoView {
    let tab_button = move |which: StepsTab, label: &'static str| {
        view! {
            <button
                class="tab"
                role="tab"
                aria-selected=move || (tab.get() == which).to_string()
                data-testid=format!("tab-{}", label.to_lowercase())
                on:click=move |_| tab.set(which)
            >
                {label}
            </button>
        }
    };
    view! {
        <section class="quad" data-panel="steps" aria-labelledby="steps-title" data-testid="step-timeline">
            <header class="quad-head">
                <CollapseToggle panel="steps" />
                <h2 id="steps-title">"Steps"</h2>
                <div class="tabs" role="tablist">
                    {tab_button(StepsTab::Timeline, "Timeline")}
                    {tab_button(StepsTab::Log, "Log")}
                </div>
                {move || match detail.get() {
                    Some(d) => Either::Left(view! {
                        <a class="muted head-link" href=format!("/runs/{}", d.id) title="Open this run on its own page" data-testid="open-run">
                            {d.pipeline.clone()} " ↗"
                        </a>
                        <a class="muted head-link" href=run_logs_href(d.id, None) title="Every log line of this run" data-testid="view-logs">
                            "View logs"
                        </a>
                    }),
                    None => Either::Right(view! { <span class="muted">"select a run"</span> }),
                }}
            </header>
            {move || match (detail.get(), tab.get()) {
                (None, _) => view! {
                    <div class="empty small"><p>"Select a run to see its steps as they execute."</p></div>
                }.into_any(),
                (Some(d), StepsTab::Timeline) => view! {
                    <Timeline detail=d.clone() selected_step now />
                    <StepFocus detail=d selected_step />
                }.into_any(),
                (Some(d), StepsTab::Log) => {
                    Suspend::new(async move { run_log(d).await }).into_any()
                }
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
    let run = detail.id;
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
                <TimelineRow step run origin span selected_step now />
            </For>
        </ol>
    }
}

fn end_of(step: &StepView, now: DateTime<Utc>) -> DateTime<Utc> {
    match step.duration_ms.get() {
        Some(ms) => step.started_at + chrono::TimeDelta::milliseconds(ms),
        None if step.status.get() == AttemptStatus::Running => now,
        None => step.started_at,
    }
}

#[component]
fn TimelineRow(
    step: StepView,
    run: uuid::Uuid,
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
    let menu_key = key.clone();
    let overlays = use_context::<Overlays>();
    view! {
        <li
            class="tl-row"
            class:selected=is_selected
            data-testid="step-row"
            data-step=key.clone()
            data-status=move || status.get().as_str()
            on:click=move |_| selected_step.set(Some(select_key.clone()))
            on:contextmenu=move |ev| {
                if let Some(overlays) = overlays {
                    overlays.open_menu(&ev, MenuTarget::Step(run, menu_key.clone()));
                }
            }
        >
            <div class="tl-label">
                <span class="tl-name">{label}</span>
                <span class="muted small mono">{format!("{} · {}", step.provider, step.model)}</span>
            </div>
            <div class="tl-track" aria-hidden="true">
                <div
                    class="tl-bar"
                    data-status={let s = step.status.clone(); move || s.get().as_str()}
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

/// The step in focus (the selected one, else the latest): its parameters, what went in and
/// the start of what came out.
#[component]
fn StepFocus(detail: RunDetail, selected_step: RwSignal<Option<String>>) -> impl IntoView {
    let focused = {
        let detail = detail.clone();
        Memo::new(move |_| detail.focused_key(selected_step.get().as_deref()))
    };
    move || {
        let key = focused.get()?;
        detail.step(&key).map(|step| {
            let params: Vec<(String, String)> = step
                .config
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| (k.clone(), compact(v)))
                        .collect()
                })
                .unwrap_or_default();
            let inputs = {
                let variables = step.variables.clone();
                move || {
                    variables.with(|v| {
                        v.as_ref()
                            .and_then(|v| v.as_object())
                            .map(|o| {
                                o.iter()
                                    .map(|(name, value)| {
                                        let value = format::plain(value);
                                        view! {
                                            <div class="io-line">
                                                <span class="mono">{name.clone()}</span>
                                                <span class="muted clip">{format::clip(&value, 160)}</span>
                                            </div>
                                        }
                                    })
                                    .collect_view()
                            })
                    })
                }
            };
            let output = {
                let response = step.response.clone();
                move || response.with(|r| format::clip(r, 280))
            };
            view! {
                <div class="step-focus" data-testid="step-focus">
                    <div class="step-focus-head">
                        <h3 class="label">{format!("{} · parameters", step.key())}</h3>
                        <a
                            class="muted head-link small"
                            href=run_logs_href(detail.id, Some(&step.step))
                            title="Every log line of this step"
                            data-testid="step-view-logs"
                        >
                            "View logs"
                        </a>
                    </div>
                    <dl class="params mono small">
                        <div><dt>"provider"</dt><dd>{step.provider.clone()}</dd></div>
                        <div><dt>"model"</dt><dd>{step.model.clone()}</dd></div>
                        {params.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
                    </dl>
                    <h3 class="label">"Inputs"</h3>
                    <div class="io small" data-testid="step-inputs">{inputs}</div>
                    <h3 class="label">"Output"</h3>
                    <p class="io small preview" data-testid="step-output">{output}</p>
                </div>
            }
        })
    }
}

/// A JSON value in one short line: `0.7`, `draft`, `[outline, draft]`.
fn compact(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(compact).collect();
            format!("[{}]", items.join(", "))
        }
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k} {}", compact(v)))
            .collect::<Vec<_>>()
            .join(", "),
        scalar => format::plain(scalar),
    }
}

/// The run's log, in its own WASM chunk: fetched the first time a log is opened (or earlier,
/// when the page is idle). The tab is never open in a server-rendered page, so the first paint
/// does not need it.
#[lazy]
pub(crate) fn run_log(detail: RunDetail) -> AnyView {
    view! { <RunLog detail /> }.into_any()
}

/// The run's log, newest first: its history from the store, then live.
#[component]
fn RunLog(detail: RunDetail) -> impl IntoView {
    let log = detail.log.clone();
    let failed = RwSignal::new(None::<String>);
    let id = detail.id;
    let load = move || {
        failed.set(None);
        if let Some(store) = use_live() {
            spawn_local(async move {
                match get_run_log(id).await {
                    Ok(lines) => store.show_log(id, lines),
                    Err(e) => failed.set(Some(e.to_string())),
                }
            });
        }
    };
    if log.read_untracked().is_none() {
        load();
    }
    let loading = {
        let log = log.clone();
        move || log.read().is_none()
    };
    view! {
        <ol class="run-log mono small" data-testid="run-log" aria-label="Run log, newest first">
            <Show when=loading>
                {move || match failed.get() {
                    None => Either::Left(view! { <li class="muted">"loading the log…"</li> }),
                    Some(e) => Either::Right(view! {
                        <li class="error-text" role="alert">
                            "The log could not be loaded: " {e} " "
                            <button class="btn small" on:click=move |_| load()>"Try again"</button>
                        </li>
                    }),
                }}
            </Show>
            <For
                each=move || log.get().unwrap_or_default().into_iter().rev()
                key=|l| l.seq
                let:line
            >
                <li class="log-line" data-level=line.level.as_str()>
                    <time>{format::clock_millis(&line.at).trim_end_matches(" UTC").to_owned()}</time>
                    <span class="log-level">{line.level.as_str()}</span>
                    <span class="log-step">{line.step.clone().unwrap_or_default()}</span>
                    <span class="log-text">{line.text.clone()}</span>
                </li>
            </For>
        </ol>
    }
}
