//! Running from the studio: a form generated from the pipeline's declared inputs and env, and
//! the run it starts, live beside the editor (the dashboard's timeline and inspector for it).

use std::time::Duration;

use chrono::Utc;
use leptos::{either::Either, prelude::*, task::spawn_local};
use uuid::Uuid;

use crate::{
    components::{
        inspector::Inspector,
        overlays::Overlays,
        panels::Panels,
        timeline::{StepTimeline, StepsTab},
    },
    functions::{get_execution, get_snapshot, run_pipeline},
    live::{provide_live, RunDetail},
    models::{Check, InputField},
};

/// The saved version the form runs: the editor's text must be saved (and not a draft) first, so
/// a run always names a stored version.
#[derive(Debug, Clone, PartialEq)]
pub struct Runnable {
    pub name: String,
    pub version: u32,
}

/// How a typed value is sent: JSON when it reads as a number, a boolean, null, a list, an object
/// or a quoted string; otherwise the text itself.
pub(super) fn value_of(text: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(value) if !text.trim().is_empty() => value,
        _ => serde_json::Value::String(text.to_owned()),
    }
}

/// A default as the field shows it: text as itself, anything else as JSON.
pub(super) fn shown(default: &Option<serde_json::Value>) -> String {
    match default {
        None => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[component]
pub fn RunForm(
    check: ReadSignal<Option<Check>>,
    /// What would run: None while the text is unsaved, a draft or has problems; the reason is
    /// `blocked`.
    runnable: Signal<Option<Runnable>>,
    blocked: Signal<String>,
    started: RwSignal<Option<Uuid>>,
    /// Typed values by input name; shared with the preview, and kept while the form is
    /// redrawn as the text changes.
    values: RwSignal<std::collections::HashMap<String, String>>,
) -> impl IntoView {
    let inputs = Memo::new(move |_| check.with(|c| c.as_ref().map(|c| c.inputs.clone())));
    let env = Memo::new(move |_| check.with(|c| c.as_ref().map(|c| c.env.clone())));
    let env_values = RwSignal::new(std::collections::HashMap::<String, String>::new());
    let error = RwSignal::new(None::<String>);
    let starting = RwSignal::new(false);

    let field = move |input: InputField| {
        let name = input.name.clone();
        let required = input.default.is_none();
        let initial = shown(&input.default);
        let key = name.clone();
        let value = move || {
            values
                .with(|v| v.get(&key).cloned())
                .unwrap_or_else(|| initial.clone())
        };
        let key = name.clone();
        view! {
            <label class="field">
                <span class="field-name mono">
                    {name.clone()}
                    {required.then(|| view! { <span class="required" title="required">" *"</span> })}
                </span>
                <input
                    type="text"
                    data-testid="input-field"
                    data-input=name.clone()
                    required=required
                    placeholder=if required { "required" } else { "" }
                    prop:value=value
                    on:input=move |ev| {
                        let text = event_target_value(&ev);
                        values.update(|v| {
                            v.insert(key.clone(), text);
                        });
                    }
                />
                {input.description.map(|d| view! { <span class="muted small">{d}</span> })}
            </label>
        }
    };

    let run = move |_| {
        let Some(target) = runnable.get_untracked() else {
            return;
        };
        let fields = inputs.get_untracked().unwrap_or_default();
        let mut map = serde_json::Map::new();
        for input in &fields {
            let text = values
                .with_untracked(|v| v.get(&input.name).cloned())
                .unwrap_or_else(|| shown(&input.default));
            if text.is_empty() && input.default.is_none() {
                error.set(Some(format!("{} is required: give it a value", input.name)));
                return;
            }
            if !text.is_empty() || input.default.is_some() {
                map.insert(input.name.clone(), value_of(&text));
            }
        }
        let overrides: Vec<(String, String)> = env_values.with_untracked(|e| {
            e.iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        error.set(None);
        starting.set(true);
        spawn_local(async move {
            match run_pipeline(target.name, target.version, map, overrides).await {
                Ok(id) => started.set(Some(id)),
                Err(e) => error.set(Some(e.to_string())),
            }
            starting.set(false);
        });
    };

    view! {
        <section class="studio-run" aria-labelledby="run-title">
            <h2 id="run-title" class="label">"Run"</h2>
            <form class="run-form" on:submit=move |ev| { ev.prevent_default(); run(()); }>
                {move || match inputs.get() {
                    Some(fields) if !fields.is_empty() => Either::Left(fields.into_iter().map(field).collect_view()),
                    _ => Either::Right(view! { <p class="muted small">"No inputs declared."</p> }),
                }}
                {move || env.get().filter(|e| !e.is_empty()).map(|names| view! {
                    <details class="env-overrides">
                        <summary>"Environment overrides"</summary>
                        {names.into_iter().map(|name| {
                            let key = name.clone();
                            view! {
                                <label class="field">
                                    <span class="field-name mono">{name.clone()}</span>
                                    <input
                                        type="text"
                                        placeholder="as in the file"
                                        on:input=move |ev| {
                                            let text = event_target_value(&ev);
                                            env_values.update(|e| { e.insert(key.clone(), text); });
                                        }
                                    />
                                </label>
                            }
                        }).collect_view()}
                    </details>
                })}
                <div class="run-actions">
                    <button
                        class="btn primary"
                        type="submit"
                        data-testid="run-button"
                        disabled=move || runnable.get().is_none() || starting.get()
                    >
                        {move || match runnable.get() {
                            Some(r) => format!("Run v{}", r.version),
                            None => "Run".into(),
                        }}
                    </button>
                    <span class="muted small" data-testid="run-blocked">{blocked}</span>
                </div>
                {move || error.get().map(|e| view! { <div class="run-error" role="alert">{e}</div> })}
            </form>
        </section>
    }
}

/// The run started from the form, live: its timeline and the inspector on its newest step.
#[component]
pub fn RunPanel(id: Uuid) -> impl IntoView {
    let data = LocalResource::new(move || async move {
        let snapshot = get_snapshot().await?;
        let detail = get_execution(id).await?;
        Ok::<_, crate::error::AppError>((snapshot, detail))
    });
    view! {
        <section class="studio-live" data-testid="studio-run" data-run-id=id.to_string()>
            <Suspense fallback=|| view! { <div class="panel skeleton" aria-busy="true"></div> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((snapshot, detail)) => Either::Left(view! { <LiveRun snapshot detail /> }),
                        Err(e) => Either::Right(view! {
                            <div class="run-error" role="alert">"The run could not be shown: " {e.to_string()}</div>
                        }),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn LiveRun(
    snapshot: crate::models::Snapshot,
    detail: crate::models::ExecutionDetail,
) -> impl IntoView {
    let store = provide_live(&snapshot);
    provide_context(Panels::new());
    provide_context(Overlays::new());
    let id = detail.id;
    store.show_detail(RunDetail::new(&detail));
    let now = RwSignal::new(Utc::now());
    Effect::new(move |_| {
        if let Ok(handle) =
            set_interval_with_handle(move || now.set(Utc::now()), Duration::from_millis(500))
        {
            on_cleanup(move || handle.clear());
        }
    });
    let detail_signal = {
        let detail = store.detail.clone();
        Signal::derive(move || detail.get())
    };
    let selected_step = RwSignal::new(None::<String>);
    let tab = RwSignal::new(StepsTab::Timeline);
    view! {
        <div class="studio-live-head">
            <h2 class="label">"Live run"</h2>
            <a class="muted small" href=format!("/runs/{id}") data-testid="open-live-run">"open on its own page ↗"</a>
        </div>
        <div class="studio-live-body">
            <StepTimeline detail=detail_signal selected_step now=Signal::from(now) tab />
            <Inspector detail=detail_signal selected_step />
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_are_json_when_they_read_as_json() {
        assert_eq!(value_of("42"), serde_json::json!(42));
        assert_eq!(
            value_of("stream processing"),
            serde_json::json!("stream processing")
        );
        assert_eq!(value_of("[1, 2]"), serde_json::json!([1, 2]));
        assert_eq!(value_of("\"quoted\""), serde_json::json!("quoted"));
        assert_eq!(value_of(""), serde_json::json!(""));
        assert_eq!(shown(&Some(serde_json::json!({"a": 1}))), "{\"a\":1}");
        assert_eq!(shown(&Some(serde_json::json!("text"))), "text");
    }
}
