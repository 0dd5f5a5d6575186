//! `/pipelines/new` and `/pipelines/{name}/edit`: the pipeline studio. The YAML in a real code
//! editor, checked as you type by the engine's own validator (on the server: one source of
//! truth), its problems, its step graph, its versions, and a run form whose run streams in on the
//! same page. The editor's JavaScript is fetched by this page only.

mod batch;
mod editor;
mod graph;
mod history;
mod leave;
mod preview;
mod run;

use leptos::{either::Either, prelude::*, task::spawn_local};
use leptos_router::{
    hooks::{use_navigate, use_query_map},
    NavigateOptions,
};
use uuid::Uuid;

use self::{
    batch::{BatchPanel, BatchState},
    editor::{CodeEditor, EditorLink},
    graph::StepGraph,
    history::History,
    preview::PreviewPanel,
    run::{RunForm, RunPanel, Runnable},
};

/// The line diff of two texts, also the history's comparison of two runs.
pub(crate) use self::history::DiffView;

use super::pipelines::edit_href;
use crate::{
    error::AppError,
    functions::{check_pipeline, editor_schema, open_pipeline, save_pipeline},
    models::{Check, EditorSchema, PipelineText, SaveOutcome},
};

/// What the page opens: the schema, and the saved text (None for a new pipeline, whose starting
/// text is `start`).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Opened {
    schema: EditorSchema,
    saved: Option<PipelineText>,
    start: String,
}

async fn load(name: Option<String>, from: Option<String>) -> Result<Opened, AppError> {
    let schema = editor_schema().await?;
    match (name, from) {
        (Some(name), _) => {
            let saved = open_pipeline(name, None).await?;
            Ok(Opened {
                start: saved.yaml.clone(),
                saved: Some(saved),
                schema,
            })
        }
        (None, Some(from)) => {
            let original = open_pipeline(from, None).await?;
            Ok(Opened {
                start: renamed(&original.yaml, &format!("{}-copy", original.name)),
                saved: None,
                schema,
            })
        }
        (None, None) => Ok(Opened {
            start: starter(&schema),
            saved: None,
            schema,
        }),
    }
}

/// A new pipeline's first text: valid as it is, on this server's first provider.
fn starter(schema: &EditorSchema) -> String {
    let provider = schema
        .providers
        .first()
        .map(|p| p.name.as_str())
        .unwrap_or("simulated");
    format!(
        "name: my-pipeline\n\
         description: What this pipeline does, in a line\n\
         defaults:\n  provider: {provider}\n\
         inputs:\n  topic:\n    description: What to write about\n    default: stream processing\n\
         steps:\n  - name: outline\n    prompt: \"Outline {{{{ topic }}}} in five points.\"\n\
         \x20 - name: draft\n    prompt: \"Expand into a short brief: {{{{ steps.outline.output }}}}\"\n"
    )
}

/// `yaml` with its top-level `name:` set to `name` (a duplicate must not overwrite its original).
fn renamed(yaml: &str, name: &str) -> String {
    let mut done = false;
    yaml.lines()
        .map(|line| {
            if !done && line.starts_with("name:") {
                done = true;
                format!("name: {name}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The studio on `name` (None: a new pipeline, or a duplicate of `?from=`).
#[component]
pub fn StudioPage(name: Signal<Option<String>>) -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(
        move || (name.get(), query.read().get("from")),
        |(name, from)| load(name, from),
    );
    view! {
        <>
            <Suspense fallback=|| view! { <main class="studio skeleton" aria-busy="true"></main> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(opened) => Either::Left(view! { <Studio opened /> }),
                        Err(e) => Either::Right(view! {
                            <main class="content">
                                <section class="panel error" role="alert">
                                    <h2>"The pipeline could not be opened"</h2>
                                    <p>{e.to_string()}</p>
                                    <a class="btn" href="/pipelines">"All pipelines"</a>
                                </section>
                            </main>
                        }),
                    }
                })}
            </Suspense>
        </>
    }
}

/// Unsaved text kept in the browser, per pipeline, so a reload or a crash loses nothing.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    text: String,
    base: Option<u32>,
}

fn kept_key(name: Option<&str>) -> String {
    format!("pipescope.studio:{}", name.unwrap_or(":new"))
}

#[cfg(feature = "hydrate")]
fn storage() -> Option<leptos::web_sys::Storage> {
    window().local_storage().ok().flatten()
}

fn keep(key: &str, kept: Option<&Kept>) {
    #[cfg(feature = "hydrate")]
    if let Some(storage) = storage() {
        let _ = match kept.and_then(|k| serde_json::to_string(k).ok()) {
            Some(json) => storage.set_item(key, &json),
            None => storage.remove_item(key),
        };
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (key, kept);
}

fn kept(key: &str) -> Option<Kept> {
    #[cfg(feature = "hydrate")]
    {
        let json = storage()?.get_item(key).ok()??;
        serde_json::from_str(&json).ok()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = key;
        None
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Graph,
    Run,
    Preview,
    Batch,
    History,
}

#[component]
fn Studio(opened: Opened) -> impl IntoView {
    let Opened {
        schema,
        saved,
        start,
    } = opened;
    let name = saved.as_ref().map(|s| s.name.clone());
    let key = StoredValue::new(kept_key(name.as_deref()));
    let base = RwSignal::new(saved.as_ref().map(|s| s.version));
    let draft = RwSignal::new(saved.as_ref().is_some_and(|s| s.draft));
    let saved_name = RwSignal::new(name.clone());
    let versions = saved
        .as_ref()
        .map(|s| s.versions.clone())
        .unwrap_or_default();
    // The text as last saved (or opened), and as it is now.
    let saved_text = RwSignal::new(start.clone());
    let text = RwSignal::new(start.clone());
    let dirty = Memo::new(move |_| text.with(|t| saved_text.with(|s| t != s)));
    let (check, set_check) = signal(None::<Check>);
    let link = EditorLink::new();
    let note = RwSignal::new(String::new());
    let status = RwSignal::new(None::<(bool, String)>);
    let conflict = RwSignal::new(None::<PipelineText>);
    let too_large = RwSignal::new(None::<u64>);
    let started = RwSignal::new(None::<Uuid>);
    let side = RwSignal::new(Side::Graph);
    // On a phone the editor and the side panel are tabs of one column; the editor shows first.
    let phone = narrow_screen();
    let phone_editor = RwSignal::new(true);
    let values = RwSignal::new(std::collections::HashMap::<String, String>::new());
    let saving = RwSignal::new(false);
    let max_bytes = schema.max_bytes;

    // Checking: one request at a time, always of the newest text. Keystrokes while a check is
    // on its way are folded into one more check when it returns, so the problems follow the
    // typing within a round trip, and a fast typist costs one request per round trip, not one
    // per key.
    let busy = StoredValue::new(false);
    let again = StoredValue::new(false);
    let run_check = move || {
        if busy.get_value() {
            again.set_value(true);
            return;
        }
        busy.set_value(true);
        spawn_local(async move {
            loop {
                again.set_value(false);
                match check_pipeline(text.get_untracked()).await {
                    Ok(check) => set_check.set(Some(check)),
                    Err(e) => {
                        status.set(Some((false, format!("The text could not be checked: {e}"))))
                    }
                }
                if !again.get_value() {
                    break;
                }
            }
            busy.set_value(false);
        });
    };
    let on_change = Callback::new(move |new: String| {
        too_large.set(None);
        text.set(new.clone());
        keep(
            &key.get_value(),
            Some(&Kept {
                text: new,
                base: base.get_untracked(),
            }),
        );
        run_check();
    });
    // The first check, and unsaved text from an earlier visit put back.
    Effect::new(move |_| {
        if let Some(k) = kept(&key.get_value()) {
            if k.text != saved_text.get_untracked() && k.base == base.get_untracked() {
                link.replace.set(Some(k.text.clone()));
                text.set(k.text);
                status.set(Some((
                    true,
                    "Your unsaved changes from before were restored.".into(),
                )));
            }
        }
        run_check();
    });

    let navigate = use_navigate();
    let save = move |as_draft: bool| {
        if saving.get_untracked() {
            return;
        }
        if too_large.get_untracked().is_some() {
            return;
        }
        let yaml = text.get_untracked();
        saving.set(true);
        let navigate = navigate.clone();
        spawn_local(async move {
            let answer = save_pipeline(
                yaml.clone(),
                base.get_untracked(),
                note.get_untracked(),
                as_draft,
            )
            .await;
            saving.set(false);
            match answer {
                Ok(SaveOutcome::Saved { version }) => {
                    let name = check.with_untracked(|c| c.as_ref().and_then(|c| c.name.clone()));
                    keep(&key.get_value(), None);
                    saved_text.set(yaml);
                    base.set(Some(version));
                    draft.set(as_draft);
                    note.set(String::new());
                    status.set(Some((
                        true,
                        format!(
                            "Saved as version {version}{}.",
                            if as_draft { " (a draft)" } else { "" }
                        ),
                    )));
                    // A new or renamed pipeline moves to its own address.
                    if let Some(name) = name {
                        if saved_name.get_untracked().as_deref() != Some(name.as_str()) {
                            saved_name.set(Some(name.clone()));
                            navigate(
                                &edit_href(&name),
                                NavigateOptions {
                                    replace: true,
                                    ..Default::default()
                                },
                            );
                        }
                    }
                }
                Ok(SaveOutcome::Conflict { theirs }) => conflict.set(Some(theirs)),
                Ok(SaveOutcome::Invalid { problems }) => status.set(Some((
                    false,
                    format!(
                        "Not saved: the text has {} problem{}. Fix {} or save it as a draft.",
                        problems.len(),
                        if problems.len() == 1 { "" } else { "s" },
                        if problems.len() == 1 { "it" } else { "them" },
                    ),
                ))),
                Err(e) => status.set(Some((false, format!("Not saved: {e}")))),
            }
        });
    };
    let on_save = Callback::new({
        let save = save.clone();
        move |as_draft: bool| save(as_draft)
    });
    // Ctrl+S outside the editor too; leaving with unsaved text asks first.
    let keys = window_event_listener(leptos::ev::keydown, {
        let save = save.clone();
        move |ev| {
            if (ev.ctrl_key() || ev.meta_key()) && ev.key().eq_ignore_ascii_case("s") {
                ev.prevent_default();
                save(false);
            }
        }
    });
    on_cleanup(move || keys.remove());
    leave::ask_before_leaving(dirty.into());

    let problems = Memo::new(move |_| {
        check.with(|c| c.as_ref().map(|c| c.problems.clone()).unwrap_or_default())
    });
    let runnable = Signal::derive(move || {
        let name = saved_name.get()?;
        let version = base.get()?;
        (!dirty.get() && !draft.get() && problems.with(Vec::is_empty))
            .then_some(Runnable { name, version })
    });
    let blocked = Signal::derive(move || {
        if saved_name.get().is_none() || base.get().is_none() {
            "Save the pipeline to run it.".to_owned()
        } else if dirty.get() {
            "Save your changes to run them.".to_owned()
        } else if draft.get() {
            "A draft does not run: fix its problems and save.".to_owned()
        } else if !problems.with(Vec::is_empty) {
            "Fix the problems to run it.".to_owned()
        } else {
            String::new()
        }
    });
    let title = move || {
        check
            .with(|c| c.as_ref().and_then(|c| c.name.clone()))
            .or_else(|| saved_name.get())
            .unwrap_or_else(|| "New pipeline".into())
    };
    // Save (Ctrl+S), and Save as draft (stored with problems, never run).
    let save_button = {
        let save = save.clone();
        move |as_draft: bool| {
            let save = save.clone();
            let (class, testid, title, label) = if as_draft {
                (
                    "btn",
                    "save-draft",
                    "Save even with problems; a draft does not run",
                    "Save as draft",
                )
            } else {
                (
                    "btn primary",
                    "save",
                    "Save as the next version (Ctrl+S)",
                    "Save",
                )
            };
            view! {
                <button
                    class=class
                    data-testid=testid
                    title=title
                    disabled=move || saving.get() || too_large.get().is_some()
                    on:click=move |_| save(as_draft)
                >
                    {label}
                </button>
            }
        }
    };
    let side_tab = move |which: Side, label: &'static str| {
        view! {
            <button
                class="tab"
                role="tab"
                aria-selected=move || (side.get() == which && !(phone.get() && phone_editor.get())).to_string()
                data-testid=format!("studio-tab-{}", label.to_lowercase())
                on:click=move |_| {
                    side.set(which);
                    phone_editor.set(false);
                }
            >
                {label}
            </button>
        }
    };
    let history_name = name.clone();
    // Owned here, not by the panel: the rows and the batch followed outlive a switch of tabs.
    let batch = BatchState::new();
    let history_versions = StoredValue::new(versions);
    view! {
        <main class="studio" data-testid="studio">
            <div class="studio-head">
                <a href="/pipelines" class="back">"← Pipelines"</a>
                <h1 data-testid="studio-title">{title}</h1>
                <span class="badge mono" data-testid="studio-version">
                    {move || match (base.get(), draft.get()) {
                        (None, _) => "not saved".to_owned(),
                        (Some(v), true) => format!("v{v} · draft"),
                        (Some(v), false) => format!("v{v}"),
                    }}
                </span>
                <span class="muted small" data-testid="dirty">{move || if dirty.get() { "unsaved changes" } else { "" }}</span>
                <input
                    class="note-input"
                    type="text"
                    placeholder="What changed (optional)"
                    aria-label="Note for this version"
                    data-testid="save-note"
                    prop:value=move || note.get()
                    on:input=move |ev| note.set(event_target_value(&ev))
                />
                {save_button(false)}
                {save_button(true)}
            </div>
            {move || status.get().map(|(ok, text)| view! {
                <div class=if ok { "studio-status ok" } else { "studio-status run-error" } role="status" data-testid="studio-status">{text}</div>
            })}
            {move || too_large.get().map(|bytes| view! {
                <div class="studio-status run-error" role="alert" data-testid="too-large">
                    {format!(
                        "That paste would make the text {} MB; pipelines are limited to {} MB. It was not inserted.",
                        bytes / 1_000_000,
                        max_bytes / 1_000_000
                    )}
                </div>
            })}
            <div class="studio-body" class:phone-editor=move || phone_editor.get()>
                <section class="studio-editor" aria-label="Pipeline YAML">
                    <CodeEditor
                        initial=start
                        schema
                        check
                        link
                        on_change
                        on_save
                        too_large=Callback::new(move |bytes| too_large.set(Some(bytes)))
                    />
                    <Problems check link />
                </section>
                <aside class="studio-side">
                    <div class="tabs" role="tablist">
                        <button
                            class="tab phone-only"
                            role="tab"
                            aria-selected=move || (phone.get() && phone_editor.get()).to_string()
                            data-testid="studio-tab-editor"
                            on:click=move |_| phone_editor.set(true)
                        >
                            "Editor"
                        </button>
                        {side_tab(Side::Graph, "Graph")}
                        {side_tab(Side::Run, "Run")}
                        {side_tab(Side::Preview, "Preview")}
                        {side_tab(Side::Batch, "Batch")}
                        {history_name.is_some().then(|| side_tab(Side::History, "History"))}
                    </div>
                    {move || match side.get() {
                        Side::Graph => view! { <StepGraph check link /> }.into_any(),
                        Side::Run => view! { <RunForm check runnable blocked started values /> }.into_any(),
                        Side::Preview => view! {
                            <PreviewPanel check text=text.into() values name=saved_name.into() started />
                        }.into_any(),
                        Side::Batch => view! {
                            <BatchPanel state=batch text=text.into() runnable blocked />
                        }.into_any(),
                        Side::History => match history_name.clone() {
                            Some(name) => view! {
                                <History name versions=history_versions.get_value() current=text.into() link />
                            }.into_any(),
                            None => ().into_any(),
                        },
                    }}
                </aside>
            </div>
            {move || started.get().map(|id| view! { <RunPanel id /> })}
            {move || conflict.get().map(|theirs| view! {
                <Conflict theirs mine=text.get_untracked() base saved_text conflict link save=Callback::new({
                    let save = save.clone();
                    move |_| save(draft.get_untracked())
                }) />
            })}
        </main>
    }
}

/// Matches the stylesheet's phone layout (`max-width: 760px`), following resizes.
#[cfg(feature = "hydrate")]
fn narrow_screen() -> Signal<bool> {
    const PHONE_MAX_WIDTH: f64 = 760.0;
    let narrow = move || {
        window()
            .inner_width()
            .ok()
            .and_then(|w| w.as_f64())
            .is_some_and(|w| w <= PHONE_MAX_WIDTH)
    };
    let phone = RwSignal::new(narrow());
    let resize = window_event_listener(leptos::ev::resize, move |_| phone.set(narrow()));
    on_cleanup(move || resize.remove());
    phone.into()
}

#[cfg(not(feature = "hydrate"))]
fn narrow_screen() -> Signal<bool> {
    Signal::stored(false)
}

/// The problems list: click one to put the cursor on it.
#[component]
fn Problems(check: ReadSignal<Option<Check>>, link: EditorLink) -> impl IntoView {
    view! {
        <section class="problems" aria-label="Problems" data-testid="problems">
            {move || match check.get() {
                None => view! { <p class="muted small">"checking…"</p> }.into_any(),
                Some(c) if c.problems.is_empty() => view! {
                    <p class="ok-text small" data-testid="no-problems">"No problems."</p>
                }.into_any(),
                Some(c) => view! {
                    <h2 class="label">{format!("{} problem{}", c.problems.len(), if c.problems.len() == 1 { "" } else { "s" })}</h2>
                    <ul>
                        {c.problems.into_iter().map(|p| {
                            let (line, column) = (p.line, p.column);
                            view! {
                                <li>
                                    <button class="problem" data-testid="problem" data-line=line.to_string() data-column=column.to_string() on:click=move |_| link.goto.set(Some((line, column)))>
                                        <span class="mono muted">{format!("{line}:{column}")}</span>
                                        " "
                                        <span>{p.message}</span>
                                        {p.suggestion.map(|s| view! { <span class="muted">{format!(" — did you mean `{s}`?")}</span> })}
                                    </button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
    }
}

/// Someone saved a newer version while this text was edited: both texts and their difference;
/// keep mine (saved on top of theirs) or take theirs. Neither is lost: mine stays in the
/// browser's storage until a save.
#[component]
fn Conflict(
    theirs: PipelineText,
    mine: String,
    base: RwSignal<Option<u32>>,
    saved_text: RwSignal<String>,
    conflict: RwSignal<Option<PipelineText>>,
    link: EditorLink,
    save: Callback<()>,
) -> impl IntoView {
    let version = theirs.version;
    let their_text = theirs.yaml.clone();
    view! {
        <div class="scrim">
            <div class="dialog conflict" role="alertdialog" aria-label="Newer version saved" data-testid="conflict">
                <h2>{format!("Version {version} was saved while you edited")}</h2>
                <p>"Red lines are only in version " {version} ", green lines only in your text."</p>
                <DiffView old=theirs.yaml.clone() new=mine />
                <div class="dialog-actions">
                    <button class="btn" data-testid="take-theirs" on:click=move |_| {
                        base.set(Some(version));
                        saved_text.set(their_text.clone());
                        link.replace.set(Some(their_text.clone()));
                        conflict.set(None);
                    }>{format!("Take version {version}")}</button>
                    <button class="btn primary" data-testid="keep-mine" on:click=move |_| {
                        base.set(Some(version));
                        conflict.set(None);
                        save.run(());
                    }>{format!("Save mine as version {}", version + 1)}</button>
                </div>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_gets_its_own_name_and_keeps_the_rest() {
        let yaml = "name: triage\ndescription: x\nsteps:\n  - name: a\n";
        assert_eq!(
            renamed(yaml, "triage-copy"),
            "name: triage-copy\ndescription: x\nsteps:\n  - name: a\n"
        );
    }
}
