//! Prompt preview: pick a step, give the inputs (shared with the run form) and the earlier steps'
//! outputs (typed, or taken from a run), and see the system prompt and prompt exactly as the
//! engine would send them, with the token count and the estimated cost; no provider is called.

use std::collections::HashMap;

use leptos::{either::Either, prelude::*, task::spawn_local};
use uuid::Uuid;

use super::run::{shown, value_of};
use crate::{
    format,
    functions::{list_pipelines, preview_step, run_outputs},
    models::{Check, Preview},
};

#[component]
pub fn PreviewPanel(
    check: ReadSignal<Option<Check>>,
    /// The text being edited (the preview is of it, saved or not).
    text: Signal<String>,
    /// Input values typed in the run form, by name.
    values: RwSignal<HashMap<String, String>>,
    /// The pipeline's saved name, to find its last run.
    name: Signal<Option<String>>,
    /// The run started from this page, if any.
    started: RwSignal<Option<Uuid>>,
) -> impl IntoView {
    let steps = Memo::new(move |_| {
        check.with(|c| {
            c.as_ref()
                .map(|c| c.steps.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    let step = RwSignal::new(None::<String>);
    let chosen = Memo::new(move |_| {
        let steps = steps.get();
        step.get()
            .filter(|s| steps.contains(s))
            .or_else(|| steps.last().cloned())
    });
    // The steps before the chosen one, whose outputs it may use.
    let earlier = Memo::new(move |_| {
        let steps = steps.get();
        match chosen.get() {
            Some(c) => steps.iter().take_while(|s| **s != c).cloned().collect(),
            None => Vec::new(),
        }
    });
    let outputs = RwSignal::new(HashMap::<String, String>::new());
    let answer = RwSignal::new(None::<Result<Preview, String>>);
    let busy = RwSignal::new(false);
    let note = RwSignal::new(None::<String>);

    let fill_from = move |id: Uuid| {
        spawn_local(async move {
            match run_outputs(id).await {
                Ok(map) => {
                    outputs.set(
                        map.into_iter()
                            .map(|(k, v)| {
                                (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                            })
                            .collect(),
                    );
                    note.set(Some(format!("Outputs of run {}.", &id.to_string()[..8])));
                }
                Err(e) => note.set(Some(format!("The run's outputs could not be loaded: {e}"))),
            }
        });
    };
    let fill_last = move |_| {
        if let Some(id) = started.get_untracked() {
            fill_from(id);
            return;
        }
        let Some(name) = name.get_untracked() else {
            note.set(Some(
                "Save the pipeline and run it once to take outputs from a run.".into(),
            ));
            return;
        };
        spawn_local(async move {
            match list_pipelines().await {
                Ok(all) => match all
                    .into_iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.last_run)
                {
                    Some(run) => fill_from(run.id),
                    None => note.set(Some(format!("{name} has not run yet."))),
                },
                Err(e) => note.set(Some(format!("The runs could not be listed: {e}"))),
            }
        });
    };
    let preview = move |_| {
        let Some(step) = chosen.get_untracked() else {
            return;
        };
        let fields =
            check.with_untracked(|c| c.as_ref().map(|c| c.inputs.clone()).unwrap_or_default());
        let mut inputs = serde_json::Map::new();
        for input in fields {
            let typed = values.with_untracked(|v| v.get(&input.name).cloned());
            match typed {
                Some(t) => {
                    inputs.insert(input.name, value_of(&t));
                }
                None if input.default.is_some() => {
                    inputs.insert(input.name.clone(), value_of(&shown(&input.default)));
                }
                None => {}
            }
        }
        let outs: serde_json::Map<String, serde_json::Value> = outputs.with_untracked(|o| {
            earlier
                .get_untracked()
                .into_iter()
                .filter_map(|s| o.get(&s).map(|v| (s, serde_json::Value::String(v.clone()))))
                .collect()
        });
        busy.set(true);
        let yaml = text.get_untracked();
        spawn_local(async move {
            let result = preview_step(yaml, step, inputs, outs)
                .await
                .map_err(|e| e.to_string());
            answer.set(Some(result));
            busy.set(false);
        });
    };

    view! {
        <section class="studio-preview" data-testid="preview">
            <label class="field">
                <span class="field-name">"Step"</span>
                <select
                    data-testid="preview-step"
                    prop:value=move || chosen.get().unwrap_or_default()
                    on:change=move |ev| step.set(Some(event_target_value(&ev)))
                >
                    {move || steps.get().into_iter().map(|s| view! { <option value=s.clone()>{s.clone()}</option> }).collect_view()}
                </select>
            </label>
            <p class="muted small">"Inputs are the run form's values (its defaults where none is typed)."</p>
            {move || {
                let earlier = earlier.get();
                (!earlier.is_empty()).then(|| view! {
                    <div class="preview-outputs">
                        <div class="run-actions">
                            <span class="field-name">"Outputs of earlier steps"</span>
                            <button class="btn small" data-testid="preview-fill" on:click=fill_last>"From the last run"</button>
                        </div>
                        {move || note.get().map(|n| view! { <p class="muted small">{n}</p> })}
                        {earlier.into_iter().map(|s| {
                            let key = s.clone();
                            let shown_value = {
                                let key = s.clone();
                                move || outputs.with(|o| o.get(&key).cloned().unwrap_or_default())
                            };
                            view! {
                                <label class="field">
                                    <span class="field-name mono">{format!("steps.{s}.output")}</span>
                                    <textarea
                                        rows="2"
                                        data-testid="preview-output"
                                        data-step=s.clone()
                                        prop:value=shown_value
                                        on:input=move |ev| {
                                            let v = event_target_value(&ev);
                                            outputs.update(|o| { o.insert(key.clone(), v); });
                                        }
                                    ></textarea>
                                </label>
                            }
                        }).collect_view()}
                    </div>
                })
            }}
            <div class="run-actions">
                <button class="btn primary" data-testid="preview-button" disabled=move || busy.get() || chosen.get().is_none() on:click=preview>
                    "Preview"
                </button>
                <span class="muted small">"Nothing is sent to a provider."</span>
            </div>
            {move || answer.get().map(|a| match a {
                Ok(p) => Either::Left(view! {
                    <div class="preview-result" data-testid="preview-result">
                        <p class="mono small" data-testid="preview-figures">
                            {format!(
                                "{} · {} · {} input tokens · up to {} output · {}",
                                p.provider,
                                p.model,
                                format::count(i64::from(p.input_tokens)),
                                format::count(i64::from(p.max_tokens)),
                                p.cost_usd.map_or_else(|| "no price known for this model".to_owned(), |c| format!("at most {}", format::usd(c))),
                            )}
                        </p>
                        {p.system.map(|s| view! {
                            <h3 class="label">"System"</h3>
                            <pre class="text" data-testid="preview-system">{s}</pre>
                        })}
                        <h3 class="label">"Prompt"</h3>
                        <pre class="text" data-testid="preview-prompt">{p.prompt}</pre>
                    </div>
                }),
                Err(e) => Either::Right(view! { <div class="run-error" role="alert" data-testid="preview-error">{e}</div> }),
            })}
        </section>
    }
}
