//! One module per page.

mod dashboard;
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
    section_page(false)
}

#[component]
pub fn ProvidersSection() -> impl IntoView {
    section_page(true)
}

/// The section's frame; `providers` for `/providers`, else a pipelines address.
fn section_page(providers: bool) -> AnyView {
    let params = use_params_map();
    // The section's page, and the pipeline the studio shows (None: a new one); None for an
    // address that is none of them.
    let page = Memo::new(move |_| {
        if providers {
            return Some((Section::Providers, None));
        }
        let p = params.read();
        match (p.get("name"), p.get("action")) {
            (None, None) => Some((Section::List, None)),
            (Some(name), None) if name == "new" => Some((Section::Studio, None)),
            (Some(name), Some(action)) if action == "edit" => Some((Section::Studio, Some(name))),
            _ => None,
        }
    });
    if page.get_untracked().is_none() {
        return NotFound().into_any();
    }
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    // The studio stays mounted while its pipeline changes (saving a new pipeline moves it to its
    // own address); only moving between pages swaps the view.
    let section = Memo::new(move |_| page.get().map_or(Section::List, |p| p.0));
    let name = Signal::derive(move || page.get().and_then(|p| p.1));
    let frame = || view! { <main class="content skeleton section-frame" aria-busy="true"></main> };
    view! {
        <div class="page" data-hydrated=move || mounted.get().to_string()>
            <Header section=if providers { Section::Providers } else { Section::List } />
            <Show when=move || mounted.get() fallback=frame>
                <Suspense fallback=frame>
                    {move || {
                        let section = section.get();
                        Suspend::new(async move { section_view(section, name).await })
                    }}
                </Suspense>
            </Show>
        </div>
    }
    .into_any()
}

#[lazy]
fn section_view(section: Section, name: Signal<Option<String>>) -> AnyView {
    match section {
        Section::List => view! { <pipelines::PipelinesPage /> }.into_any(),
        Section::Studio => view! { <studio::StudioPage name /> }.into_any(),
        Section::Providers => view! { <providers::ProvidersPage /> }.into_any(),
    }
}
