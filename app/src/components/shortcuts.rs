//! The page's keyboard shortcuts, and the list `?` shows. Space pauses or resumes the selected
//! run, Esc steps back out, `/` and Ctrl+F search the inspector, Ctrl+L opens the log viewer on
//! the selected run (or step), Ctrl+P the quick switcher. Keys typed into a field or on a button
//! are theirs, not ours.

use leptos::{prelude::*, task::spawn_local};
use leptos_router::hooks::use_navigate;
use uuid::Uuid;

use super::{
    inspector::SEARCH_ID,
    overlays::Overlays,
    panels::{focus, Panels},
};
use crate::{
    functions::control_run,
    live::LiveStore,
    models::{logs::run_logs_href, RunAction, RunStatus},
};

/// Listens to the keyboard while the page is shown, and shows the list of shortcuts on `?`.
#[component]
pub fn Shortcuts(
    store: LiveStore,
    selected: RwSignal<Option<Uuid>>,
    selected_step: RwSignal<Option<String>>,
    overlays: Overlays,
    panels: Panels,
) -> impl IntoView {
    let help = RwSignal::new(false);
    let navigate = use_navigate();
    let keys = window_event_listener(leptos::ev::keydown, move |event| {
        use leptos::wasm_bindgen::JsCast;
        let in_control = event
            .target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
            .is_some_and(|e| {
                matches!(
                    e.tag_name().as_str(),
                    "INPUT" | "TEXTAREA" | "SELECT" | "BUTTON"
                )
            });
        let command = event.ctrl_key() || event.meta_key();
        if command && !event.alt_key() {
            match event.key().to_lowercase().as_str() {
                "p" => {
                    event.prevent_default();
                    overlays.close();
                    overlays.switcher.set(true);
                }
                "f" if exists(SEARCH_ID) => {
                    event.prevent_default();
                    reveal(panels, "inspector", SEARCH_ID);
                }
                "l" => {
                    event.prevent_default();
                    let href = match selected.get_untracked() {
                        Some(run) => run_logs_href(run, selected_step.get_untracked().as_deref()),
                        None => "/logs".to_owned(),
                    };
                    navigate(&href, Default::default());
                }
                _ => {}
            }
            return;
        }
        if event.key() == "Escape" {
            if overlays.close() {
                return;
            }
            if help.get_untracked() {
                help.set(false);
            } else if !in_control {
                if selected_step.get_untracked().is_some() {
                    selected_step.set(None);
                } else {
                    selected.set(None);
                }
            }
            return;
        }
        if in_control || event.alt_key() {
            return;
        }
        match event.key().as_str() {
            " " => {
                let Some(run) = selected.get_untracked().and_then(|id| store.run(id)) else {
                    return;
                };
                let action = match run.status.get_untracked() {
                    RunStatus::Paused => RunAction::Resume,
                    RunStatus::Running | RunStatus::Pending => RunAction::Pause,
                    _ => return,
                };
                event.prevent_default();
                spawn_local(async move {
                    let _ = control_run(run.id, action).await;
                });
            }
            "/" if exists(SEARCH_ID) => {
                event.prevent_default();
                reveal(panels, "inspector", SEARCH_ID);
            }
            "?" => help.update(|h| *h = !*h),
            _ => {}
        }
    });
    on_cleanup(move || keys.remove());

    // The list is in its own WASM chunk, fetched the first time `?` is pressed.
    view! { <Show when=move || help.get()>{Suspend::new(async { shortcut_list().await })}</Show> }
}

#[lazy]
pub(crate) fn shortcut_list() -> AnyView {
    view! {
        <aside class="popover shortcuts" role="dialog" aria-label="Keyboard shortcuts" data-testid="shortcuts">
            <h2>"Keyboard shortcuts"</h2>
            <dl>
                <dt><kbd>"Space"</kbd></dt><dd>"pause or resume the selected run"</dd>
                <dt><kbd>"Esc"</kbd></dt><dd>"close, then clear the step, then the run selection"</dd>
                <dt><kbd>"/"</kbd>" "<kbd>"Ctrl F"</kbd></dt><dd>"search the prompt and response"</dd>
                <dt><kbd>"Ctrl L"</kbd></dt><dd>"the logs (of the selected run or step)"</dd>
                <dt><kbd>"Ctrl P"</kbd></dt><dd>"go to a pipeline or run"</dd>
                <dt><kbd>"?"</kbd></dt><dd>"show or hide this list"</dd>
            </dl>
            <p class="muted small">"Right-click a run or a step for more."</p>
        </aside>
    }
    .into_any()
}

/// Whether the page has an element `id` (else a shortcut for it is left to the browser).
fn exists(id: &str) -> bool {
    document().get_element_by_id(id).is_some()
}

/// Shows `panel` (the phone's tab, expanded on a tablet) and focuses its element `id` once it
/// is visible: on the next frame, as a hidden element takes no focus and a new one is not
/// rendered yet.
fn reveal(panels: Panels, panel: &'static str, id: &'static str) {
    panels.mobile.set(panel);
    panels.collapsed.update(|c| c.retain(|p| *p != panel));
    request_animation_frame(move || focus(id));
}
