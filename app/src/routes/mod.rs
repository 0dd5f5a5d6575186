//! One module per page.

mod dashboard;
mod not_found;
mod pipelines;
mod studio;

pub use dashboard::{DashboardPage, RunPage, StepPage};
pub use not_found::NotFound;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::components::header::Header;

/// `/pipelines`, `/pipelines/new` and `/pipelines/{name}/edit`. The section's code is in its own
/// WASM chunk, fetched once the page is hydrated: the server renders the frame (header and an
/// empty page of the same shape), so nothing lazy has to be hydrated and the first load does
/// not carry the machinery of lazily loaded routes.
#[component]
pub fn PipelinesSection() -> impl IntoView {
    let params = use_params_map();
    // The list (`Some(None)`), the studio on a new pipeline (`Some(Some(None))`) or on a saved
    // one; None for an address that is none of them.
    let page = Memo::new(move |_| {
        let p = params.read();
        match (p.get("name"), p.get("action")) {
            (None, None) => Some(None),
            (Some(name), None) if name == "new" => Some(Some(None)),
            (Some(name), Some(action)) if action == "edit" => Some(Some(Some(name))),
            _ => None,
        }
    });
    if page.get_untracked().is_none() {
        return NotFound().into_any();
    }
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    // The studio stays mounted while its pipeline changes (saving a new pipeline moves it to its
    // own address); only moving between the list and the studio swaps the view.
    let studio = Memo::new(move |_| page.get().is_some_and(|p| p.is_some()));
    let name = Signal::derive(move || page.get().flatten().flatten());
    let frame = || view! { <main class="content skeleton section-frame" aria-busy="true"></main> };
    view! {
        <div class="page" data-hydrated=move || mounted.get().to_string()>
            <Header pipelines=true />
            <Show when=move || mounted.get() fallback=frame>
                <Suspense fallback=frame>
                    {move || {
                        let studio = studio.get();
                        Suspend::new(async move { section_view(studio, name).await })
                    }}
                </Suspense>
            </Show>
        </div>
    }
    .into_any()
}

#[lazy]
fn section_view(studio: bool, name: Signal<Option<String>>) -> AnyView {
    if studio {
        view! { <studio::StudioPage name /> }.into_any()
    } else {
        view! { <pipelines::PipelinesPage /> }.into_any()
    }
}
