//! The context menus of runs and steps, and the raw-data dialog one of them opens.

use leptos::{either::Either, prelude::*, task::spawn_local};

use super::overlays::{Menu, MenuTarget, Overlays};
use crate::{
    clipboard::copy_to_clipboard,
    functions::get_execution,
    live::{step_key, LiveStore, StepView},
    models::logs::run_logs_href,
    rich::{highlight, pieces_view},
};

/// The context menu, at the pointer. Every action closes it.
#[component]
pub fn ContextMenu(overlays: Overlays, store: LiveStore) -> impl IntoView {
    // A click or a right-click anywhere else closes an open context menu (rows opening one stop
    // their right-click from reaching the window).
    let clicks = window_event_listener(leptos::ev::click, move |_| overlays.menu.set(None));
    let right_clicks =
        window_event_listener(leptos::ev::contextmenu, move |_| overlays.menu.set(None));
    on_cleanup(move || {
        clicks.remove();
        right_clicks.remove();
    });
    // The menus are in their own WASM chunk, fetched the first time one opens (or earlier, when
    // the page is idle).
    move || {
        let menu = overlays.menu.get()?;
        let store = store.clone();
        Some(Suspend::new(async move {
            menu_view(menu, overlays, store).await
        }))
    }
}

#[lazy]
pub(crate) fn menu_view(menu: Menu, overlays: Overlays, store: LiveStore) -> AnyView {
    let close = move || overlays.menu.set(None);
    let style = format!("left: {}px; top: {}px", menu.x, menu.y);
    let items = match menu.target {
        MenuTarget::Run(id) => Either::Left(view! {
            <button role="menuitem" data-testid="menu-copy-config" on:click=move |_| {
                close();
                spawn_local(async move {
                    // Browsers allow a write shortly after the click, which this fetch fits in.
                    if let Ok(run) = get_execution(id).await {
                        copy_to_clipboard(&pretty(&run.config));
                    }
                });
            }>"Copy config"</button>
            <a role="menuitem" data-testid="menu-export" href=format!("/api/executions/{id}") download=format!("run-{id}.json") on:click=move |_| close()>
                "Export results"
            </a>
            <a role="menuitem" data-testid="menu-logs" href=run_logs_href(id, None) on:click=move |_| close()>
                "View logs"
            </a>
        }),
        MenuTarget::Step(run, key) => {
            let step = store
                .detail
                .get_untracked()
                .filter(|d| d.id == run)
                .and_then(|d| {
                    d.steps
                        .read_untracked()
                        .iter()
                        .find(|s| s.key() == key)
                        .cloned()
                });
            let step_logs = run_logs_href(run, step.as_ref().map(|s| s.step.as_str()));
            // Read when an item is chosen: a response may still be streaming in.
            let text = move |of: fn(&StepView) -> String| step.as_ref().map(of).unwrap_or_default();
            let prompt = text.clone();
            let response = text;
            Either::Right(view! {
                <button role="menuitem" data-testid="menu-copy-prompt" on:click=move |_| {
                    close();
                    copy_to_clipboard(&prompt(|s| s.prompt.get_untracked().unwrap_or_default()));
                }>"Copy prompt"</button>
                <button role="menuitem" data-testid="menu-copy-response" on:click=move |_| {
                    close();
                    copy_to_clipboard(&response(|s| s.response.get_untracked()));
                }>"Copy response"</button>
                <a role="menuitem" data-testid="menu-step-logs" href=step_logs on:click=move |_| close()>
                    "View logs"
                </a>
                <button role="menuitem" data-testid="menu-raw" on:click=move |_| {
                    close();
                    let key = key.clone();
                    spawn_local(async move {
                        let shown = match get_execution(run).await {
                            Ok(detail) => detail
                                .steps
                                .iter()
                                .find(|s| step_key(&s.step, s.attempt) == key)
                                .map(|s| serde_json::to_string_pretty(s).unwrap_or_default())
                                .unwrap_or_else(|| format!("step {key} is not stored yet")),
                            Err(e) => format!("the step could not be loaded: {e}"),
                        };
                        overlays.raw.set(Some((format!("{key} · raw data"), shown)));
                    });
                }>"View raw data"</button>
            })
        }
    };
    view! {
        <div class="menu" role="menu" style=style data-testid="context-menu" on:click=|e| e.stop_propagation()>
            {items}
        </div>
    }
    .into_any()
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The raw data of a step, as stored, coloured; in its own WASM chunk like the menus.
#[component]
pub fn RawDialog(overlays: Overlays) -> impl IntoView {
    move || {
        let (title, json) = overlays.raw.get()?;
        Some(Suspend::new(async move {
            raw_view(title, json, overlays).await
        }))
    }
}

#[lazy]
pub(crate) fn raw_view(title: String, json: String, overlays: Overlays) -> AnyView {
    let label = title.clone();
    let body = pieces_view(&json, &highlight::syntax(&json), &[]);
    view! {
        <div class="scrim" on:click=move |_| overlays.raw.set(None)>
            <div class="dialog" role="dialog" aria-label=label data-testid="raw-dialog" on:click=|e| e.stop_propagation()>
                <header class="quad-head">
                    <h2>{title}</h2>
                    <button class="btn small" on:click=move |_| overlays.raw.set(None)>"Close"</button>
                </header>
                <pre class="text mono">{body}</pre>
            </div>
        </div>
    }
    .into_any()
}
