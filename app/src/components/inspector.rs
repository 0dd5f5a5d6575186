//! Quadrant 3, the prompt inspector: the selected step's prompt exactly as sent, the template
//! with each variable and its value, and the response streaming in; search with highlighted
//! matches, JSON and code coloured, copy and export. All LLM and user text is rendered as text
//! nodes: markup in a prompt or a response never becomes HTML.

use leptos::{either::Either, prelude::*};
use uuid::Uuid;

use super::panels::CollapseToggle;
use crate::{
    clipboard::copy_to_clipboard,
    format,
    live::{RunDetail, StepView},
    models::AttemptStatus,
    rich::{self, highlight},
};

/// The id of the inspector's search field, which `/` and Ctrl+F focus.
pub const SEARCH_ID: &str = "inspector-search";

#[component]
pub fn Inspector(
    detail: Signal<Option<RunDetail>>,
    selected_step: RwSignal<Option<String>>,
) -> impl IntoView {
    // The step shown, by run and key: the inspector is rebuilt when that changes, not when
    // another step of the run starts (which would close panels and lose the scroll position).
    let focused = Memo::new(move |_| {
        let detail = detail.get()?;
        let key = detail.focused_key(selected_step.get().as_deref())?;
        Some((detail.id, key))
    });
    let step = move || {
        let (_, key) = focused.get()?;
        detail.get_untracked()?.step(&key)
    };
    // The query outlives the step shown: searching across steps for the same word is common.
    let query = RwSignal::new(String::new());
    view! {
        <section class="quad" data-panel="inspector" aria-labelledby="inspector-title" data-testid="inspector">
            <header class="quad-head">
                <CollapseToggle panel="inspector" />
                <h2 id="inspector-title">"Prompt inspector"</h2>
                {move || {
                    let (run, key) = focused.get()?;
                    Some(view! {
                        <a class="muted mono" href=format!("/runs/{run}/steps/{key}") title="Open this step on its own page" data-testid="open-step">
                            {key.clone()} " ↗"
                        </a>
                    })
                }}
            </header>
            {move || match step() {
                None => Either::Left(view! {
                    <div class="empty small">
                        <p>
                            {move || match selected_step.get() {
                                Some(key) if detail.get().is_some() => format!("This run has no step {key} (yet)."),
                                _ => "Select a step to read its prompt and response.".to_owned(),
                            }}
                        </p>
                    </div>
                }),
                Some(s) => {
                    let run = focused.get_untracked().map(|(run, _)| run).unwrap_or_default();
                    Either::Right(view! { <StepInspector step=s run query /> })
                }
            }}
        </section>
    }
}

#[component]
fn StepInspector(step: StepView, run: Uuid, query: RwSignal<String>) -> impl IntoView {
    let copied = RwSignal::new(None::<String>);
    let copy = {
        let (prompt, response) = (step.prompt.clone(), step.response.clone());
        move |what: &'static str| {
            let text = match what {
                "prompt" => prompt.get_untracked().unwrap_or_default(),
                _ => response.get_untracked(),
            };
            copied.set(Some(if copy_to_clipboard(&text) {
                format!("{what} copied")
            } else {
                "no clipboard here (https or localhost only)".to_owned()
            }));
        }
    };
    let copy_prompt = copy.clone();
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

    let system = step.system_prompt.clone();
    let system_text = {
        let s = system.clone();
        Signal::derive(move || s.get().unwrap_or_default())
    };
    let prompt = {
        let p = step.prompt.clone();
        Signal::derive(move || p.get().unwrap_or_default())
    };
    // Read in place, never cloned per chunk.
    let response: Signal<String> = Signal::from(step.response.clone());
    let streaming = {
        let status = step.status.clone();
        Signal::derive(move || status.get() == AttemptStatus::Running)
    };
    // Colours would be redone for every chunk; a streaming response is coloured once complete.
    let colour_response = Signal::derive(move || !streaming.get());
    // Each text is searched once per change; its marks and the count share the result.
    let search = Signal::from(query);
    let (system_marks, prompt_marks, response_marks) = (
        rich::marks(system_text, search),
        rich::marks(prompt, search),
        rich::marks(response, search),
    );
    let matches = move || {
        if query.read().is_empty() {
            return None;
        }
        let counts = [system_marks, prompt_marks, response_marks].map(|m| m.with(Vec::len));
        // A text with more matches than are marked makes the total a lower bound.
        let capped = counts.contains(&highlight::MARKS_LIMIT);
        Some((counts.iter().sum(), capped))
    };
    let has_prompt = {
        let p = step.prompt.clone();
        move || p.read().is_some()
    };
    let error = step.error.clone();
    let key = step.key();
    let transcript = format!("/api/executions/{run}/transcript");
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
                        "JSON"
                    </a>
                    <a
                        class="btn small"
                        data-testid="export-text"
                        href=transcript
                        download=format!("run-{run}.txt")
                        title="Every prompt and response of the run, as plain text"
                    >
                        "Text"
                    </a>
                    <span class="muted small" role="status" data-testid="copied">
                        {move || copied.get().unwrap_or_default()}
                    </span>
                </div>
            </div>
            <SearchBox query matches />
            {move || error.get().map(|e| view! { <div class="run-error" role="alert">{e}</div> })}
            {move || system.read().is_some().then(|| view! {
                <h3 class="label">"System"</h3>
                <pre class="text" data-testid="system-text">
                    {rich::text(system_text, system_marks, Signal::derive(|| true))}
                </pre>
            })}
            <h3 class="label">"Prompt"</h3>
            <pre class="text" data-testid="prompt-text">
                {move || if has_prompt() {
                    Either::Left(rich::text(prompt, prompt_marks, Signal::derive(|| true)))
                } else {
                    Either::Right("(rendering…)")
                }}
            </pre>
            <details class="template">
                <summary>"Template and variables"</summary>
                <TemplateView step />
            </details>
            <h3 class="label">
                "Response "
                <span class="muted small">{move || if streaming.get() { "streaming…" } else { "" }}</span>
            </h3>
            <pre class="text response" data-testid="response-text" data-step=key>
                {rich::text(response, response_marks, colour_response)}
            </pre>
        </div>
    }
}

/// Search within the step: matches are marked in the system prompt, prompt and response; Enter
/// scrolls to the next one, Shift+Enter to the previous.
#[component]
fn SearchBox(
    query: RwSignal<String>,
    matches: impl Fn() -> Option<(usize, bool)> + Send + Sync + 'static,
) -> impl IntoView {
    // The mark shown last; none until Enter is first pressed for this query.
    let current = StoredValue::new(None::<usize>);
    let step_through = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "Enter" => {
            ev.prevent_default();
            let shown = show_match(current.get_value(), !ev.shift_key());
            current.set_value(shown);
        }
        "Escape" => {
            query.set(String::new());
            blur(&ev);
        }
        _ => {}
    };
    let label = move || match matches() {
        None => String::new(),
        Some((0, _)) => "no matches".into(),
        Some((n, true)) => format!("{n}+ matches"),
        Some((1, false)) => "1 match".into(),
        Some((n, false)) => format!("{n} matches"),
    };
    view! {
        <div class="search">
            <input
                id=SEARCH_ID
                type="search"
                placeholder="Search this step   ( / )"
                aria-label="Search the prompt and response"
                data-testid="inspector-search"
                autocomplete="off"
                spellcheck="false"
                prop:value=move || query.get()
                on:input=move |ev| {
                    current.set_value(None);
                    query.set(event_target_value(&ev));
                }
                on:keydown=step_through
            />
            <span class="muted small mono" role="status" data-testid="match-count">{label}</span>
        </div>
    }
}

/// Marks the mark after `current` (or before it, when not `forward`) as current, wrapping
/// around, and scrolls it into view; returns its index. With no current mark yet, forward starts
/// at the first and backward at the last.
fn show_match(current: Option<usize>, forward: bool) -> Option<usize> {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        let document = leptos::web_sys::window().and_then(|w| w.document())?;
        let marks = document
            .query_selector_all("[data-testid=inspector] mark")
            .ok()?;
        let len = marks.length() as usize;
        if len == 0 {
            return None;
        }
        let target = match (current, forward) {
            (None, true) => 0,
            (None, false) => len - 1,
            (Some(c), true) => (c + 1) % len,
            (Some(c), false) => (c.min(len - 1) + len - 1) % len,
        };
        for i in 0..len {
            if let Some(mark) = marks
                .item(i as u32)
                .and_then(|m| m.dyn_into::<leptos::web_sys::Element>().ok())
            {
                let _ = mark.class_list().toggle_with_force("current", i == target);
                if i == target {
                    mark.scroll_into_view_with_bool(false);
                }
            }
        }
        Some(target)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (current, forward);
        None
    }
}

fn blur(ev: &leptos::ev::KeyboardEvent) {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        if let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::HtmlElement>().ok())
        {
            let _ = input.blur();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

/// The template as written, each `{{ … }}` coloured by the variable it reads, and the list of
/// variables with the values substituted.
#[component]
fn TemplateView(step: StepView) -> impl IntoView {
    let (template, variables) = (step.template.clone(), step.variables.clone());
    let names = {
        let variables = variables.clone();
        Memo::new(move |_| {
            variables.with(|v| {
                v.as_ref()
                    .and_then(|v| v.as_object())
                    .map(|o| o.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            })
        })
    };
    let value_of = {
        let variables = variables.clone();
        move |name: &str| {
            variables.with_untracked(|v| {
                v.as_ref()
                    .and_then(|v| v.get(name))
                    .map(format::plain)
                    .unwrap_or_default()
            })
        }
    };
    let body = {
        let value_of = value_of.clone();
        move || {
            let names = names.get();
            template.with(|t| {
                let t = t.as_deref().unwrap_or_default();
                highlight::template_parts(t, &names)
                    .into_iter()
                    .map(|(range, var)| {
                        let text = t[range].to_owned();
                        match var {
                            None => Either::Left(text),
                            Some(i) => Either::Right(view! {
                                <span class=format!("tvar v{}", i % 6) title=format::clip(&value_of(&names[i]), 300)>{text}</span>
                            }),
                        }
                    })
                    .collect_view()
            })
        }
    };
    let vars = move || {
        names
            .get()
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let value = value_of(&name);
                view! {
                    <div class="var">
                        <span class=format!("var-name mono tvar v{}", i % 6)>{name}</span>
                        <span class="var-value">{value}</span>
                    </div>
                }
            })
            .collect_view()
    };
    view! {
        <pre class="text mono" data-testid="template-text">{body}</pre>
        <div class="vars" data-testid="variables">{vars}</div>
    }
}
