//! One module per page.

mod api;
mod dashboard;
mod history;
mod logs;
mod not_found;
mod pipelines;
mod providers;
mod studio;

pub use dashboard::{DashboardPage, RunPage, StepPage};
pub use not_found::NotFound;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::components::header::{Header, Section};

/// `/pipelines`, `/pipelines/new` and `/pipelines/{name}/edit`. The section's code is in its own
/// WASM chunk, fetched once the page is hydrated: the server renders the frame (header and an
/// empty page of the same shape), so nothing lazy has to be hydrated and the first load does
/// not carry the machinery of lazily loaded routes.
#[component]
pub fn PipelinesSection() -> impl IntoView {
    section_page(Section::List)
}

#[component]
pub fn ProvidersSection() -> impl IntoView {
    section_page(Section::Providers)
}

/// `/logs`: the log viewer, in a chunk of its own (the pipelines section's is not fetched for
/// it), in the same frame.
#[component]
pub fn LogsSection() -> impl IntoView {
    section_page(Section::Logs)
}

/// `/runs` and `/compare`: the history of every run and two runs side by side, in a chunk of
/// their own, in the same frame.
#[component]
pub fn HistorySection() -> impl IntoView {
    section_page(Section::History)
}

/// The section's page at the address `(name, action)` after `/pipelines`, and the pipeline the
/// studio shows (None: a new one); None for an address that is none of them.
fn page_at(name: Option<String>, action: Option<String>) -> Option<(Section, Option<String>)> {
    match (name, action) {
        (None, None) => Some((Section::List, None)),
        (Some(name), None) if name == "new" => Some((Section::Studio, None)),
        (Some(name), Some(action)) if action == "edit" => Some((Section::Studio, Some(name))),
        _ => None,
    }
}

/// The section's frame: `/providers`, `/logs`, `/runs`, else a pipelines address. Everything that
/// follows the address is in the section's chunk: the first load carries only this frame.
fn section_page(section: Section) -> AnyView {
    let params = use_params_map();
    let known = matches!(
        section,
        Section::Providers | Section::Logs | Section::History
    ) || params.with_untracked(|p| page_at(p.get("name"), p.get("action")).is_some());
    if !known {
        return NotFound().into_any();
    }
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    let frame = || view! { <main class="content skeleton section-frame" aria-busy="true"></main> };
    view! {
        <div class="page" data-hydrated=move || mounted.get().to_string()>
            <Header section />
            <Show when=move || mounted.get() fallback=frame>
                <Suspense fallback=frame>
                    {Suspend::new(async move {
                        match section {
                            Section::Logs => logs_view().await,
                            Section::History => history_view().await,
                            _ => section_view(section == Section::Providers).await,
                        }
                    })}
                </Suspense>
            </Show>
        </div>
    }
    .into_any()
}

#[lazy]
fn logs_view() -> AnyView {
    logs_shortcut(Section::Logs);
    view! { <logs::LogsPage /> }.into_any()
}

#[lazy]
fn history_view() -> AnyView {
    logs_shortcut(Section::History);
    // `/compare` (two runs of the history side by side) shares the history's chunk.
    let compare = leptos_router::hooks::use_location()
        .pathname
        .with_untracked(|path| path == "/compare");
    if compare {
        return view! { <history::ComparePage /> }.into_any();
    }
    view! { <history::HistoryPage /> }.into_any()
}

#[lazy]
fn section_view(providers: bool) -> AnyView {
    logs_shortcut(Section::List);
    if providers {
        return view! { <providers::ProvidersPage /> }.into_any();
    }
    let params = use_params_map();
    let page = Memo::new(move |_| params.with(|p| page_at(p.get("name"), p.get("action"))));
    // The studio stays mounted while its pipeline changes (saving a new pipeline moves it to its
    // own address); only moving between the list and the studio swaps the view.
    let studio = Memo::new(move |_| page.with(|p| matches!(p, Some((Section::Studio, _)))));
    let name = Signal::derive(move || page.get().and_then(|p| p.1));
    (move || match page.with(Option::is_some) {
        false => NotFound().into_any(),
        true if studio.get() => view! { <studio::StudioPage name /> }.into_any(),
        true => view! { <pipelines::PipelinesPage /> }.into_any(),
    })
    .into_any()
}

/// Ctrl+L on a section's page: opens the log viewer, or on the log viewer puts the focus on its
/// lines (the dashboard's pages have their own, scoped to their run: see `Shortcuts`). Set up by
/// the sections' chunks, so the first load does not carry it. A key an editor has taken
/// (CodeMirror selects the line with it) stays the editor's.
fn logs_shortcut(section: Section) {
    let navigate = leptos_router::hooks::use_navigate();
    let keys = window_event_listener(leptos::ev::keydown, move |event| {
        let command = event.ctrl_key() || event.meta_key();
        if !command || event.alt_key() || event.default_prevented() || event.key() != "l" {
            return;
        }
        event.prevent_default();
        if section == Section::Logs {
            crate::components::panels::focus(logs::LIST_ID);
        } else {
            navigate("/logs", Default::default());
        }
    });
    on_cleanup(move || keys.remove());
}
