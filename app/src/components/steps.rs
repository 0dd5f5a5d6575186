//! Quadrant 2, the selected run's step timeline, and quadrant 3, the prompt inspector. All LLM
//! and user text is rendered as text nodes: markup in a prompt or a response never becomes HTML.

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

/// Quadrant 3: the selected step's prompt exactly as sent, the template with each variable's
/// value, and the response streaming in.
#[component]
pub fn Inspector(
    detail: Signal<Option<RunDetail>>,
    selected_step: RwSignal<Option<String>>,
) -> impl IntoView {
    let step = move || {
        let detail = detail.get()?;
        let key = selected_step.get();
        let steps = detail.steps.get();
        match key {
            Some(key) => steps.iter().find(|s| s.key() == key).cloned(),
            // Nothing chosen: follow the step that started last.
            None => steps.iter().max_by_key(|s| s.started_at).cloned(),
        }
    };
    view! {
        <section class="quad" aria-labelledby="inspector-title" data-testid="inspector">
            <header class="quad-head">
                <h2 id="inspector-title">"Prompt inspector"</h2>
                {move || {
                    let run = detail.get()?.id;
                    let key = step()?.key();
                    Some(view! {
                        <a class="muted mono" href=format!("/runs/{run}/steps/{key}") title="Open this step on its own page" data-testid="open-step">
                            {key.clone()} " ↗"
                        </a>
                    })
                }}
            </header>
            {move || match step() {
                None => view! {
                    <div class="empty small"><p>"Select a step to read its prompt and response."</p></div>
                }.into_any(),
                Some(s) => {
                    let run = detail.get_untracked().map(|d| d.id).unwrap_or_default();
                    view! { <StepInspector step=s run /> }.into_any()
                }
            }}
        </section>
    }
}

#[component]
fn StepInspector(step: StepView, run: uuid::Uuid) -> impl IntoView {
    let copied = RwSignal::new(None::<&'static str>);
    let copy = {
        let (prompt, response) = (step.prompt.clone(), step.response.clone());
        move |what: &'static str| {
            let text = match what {
                "prompt" => prompt.get_untracked().unwrap_or_default(),
                _ => response.get_untracked(),
            };
            copy_to_clipboard(&text);
            copied.set(Some(what));
        }
    };
    let copy_prompt = copy.clone();
    let prompt = step.prompt.clone();
    let system = step.system_prompt.clone();
    let template = step.template.clone();
    let variables = step.variables.clone();
    let response = step.response.clone();
    let status = step.status.clone();
    let error = step.error.clone();
    let figures = {
        let s = step.clone();
        move || {
            let mut parts = vec![
                format!("prompt {} tok", s.prompt_tokens.get().unwrap_or(0)),
                format!("completion {} tok", s.completion_tokens.get().unwrap_or(0)),
            ];
            if let Some(b) = s.token_budget {
                parts.push(format!("budget {b}"));
            }
            if let Some(c) = s.cost_usd.get() {
                parts.push(format::usd(c));
            }
            if let Some(t) = s.ttft_ms.get() {
                parts.push(format!("first token {}", format::duration_ms(i64::from(t))));
            }
            parts.join(" · ")
        }
    };
    let vars = move || {
        variables
            .get()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| {
                let text = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                view! {
                    <div class="var">
                        <span class="var-name mono">{name}</span>
                        <span class="var-value">{text}</span>
                    </div>
                }
            })
            .collect_view()
    };
    view! {
        <div class="inspector">
            <div class="inspector-bar">
                <div class="figures mono small" data-testid="inspector-figures">{figures}</div>
                <div class="inspector-actions">
                    <button class="btn small" data-testid="copy-prompt" on:click=move |_| copy_prompt("prompt")>"Copy prompt"</button>
                    <button class="btn small" data-testid="copy-response" on:click=move |_| copy("response")>"Copy response"</button>
                    <a
                        class="btn small"
                        data-testid="export-json"
                        href=format!("/api/executions/{run}")
                        download=format!("run-{run}.json")
                        title="The run with every step attempt, as JSON"
                    >
                        "Export JSON"
                    </a>
                    <span class="muted small" role="status" data-testid="copied">
                        {move || copied.get().map(|w| format!("{w} copied")).unwrap_or_default()}
                    </span>
                </div>
            </div>
            {move || error.get().map(|e| view! { <div class="run-error" role="alert">{e}</div> })}
            {move || system.get().map(|s| view! {
                <h3 class="label">"System"</h3>
                <pre class="text" data-testid="system-text">{s}</pre>
            })}
            <h3 class="label">"Prompt"</h3>
            <pre class="text" data-testid="prompt-text">{move || prompt.get().unwrap_or_else(|| "(rendering…)".into())}</pre>
            <details class="template">
                <summary>"Template and variables"</summary>
                <pre class="text mono" data-testid="template-text">{move || template.get().unwrap_or_default()}</pre>
                <div class="vars">{vars}</div>
            </details>
            <h3 class="label">
                "Response "
                <span class="muted small">{move || if status.get() == "running" { "streaming…" } else { "" }}</span>
            </h3>
            <pre class="text response" data-testid="response-text">{move || response.get()}</pre>
        </div>
    }
}

/// Puts `text` on the clipboard (the browser asks the user where it must).
fn copy_to_clipboard(text: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}
