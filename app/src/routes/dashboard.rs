use leptos::prelude::*;

use crate::{
    components::{format, Header, Stat},
    functions::get_store_summary,
};

/// `/`: the dashboard. Server-rendered complete, then hydrated.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let summary = Resource::new(|| (), |_| get_store_summary());
    // Set once the WASM has taken over the page, so tests (and curious users) can tell.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <div class="page" data-hydrated=move || hydrated.get().to_string()>
            <Header />
            <main class="content">
                <div class="page-head">
                    <h1>"Overview"</h1>
                    <p class="muted">"What this pipescope store holds right now."</p>
                </div>
                <Suspense fallback=|| view! { <div class="stats skeleton" aria-busy="true"></div> }>
                    {move || Suspend::new(async move {
                        match summary.await {
                            Ok(s) => {
                                let empty = s.executions == 0;
                                view! {
                                    <div class="stats" data-testid="store-summary">
                                        <Stat label="Runs" value=format::count(s.executions) hint="recorded executions" />
                                        <Stat label="Running" value=format::count(s.running) hint="executing now" />
                                        <Stat label="Steps" value=format::count(s.steps) hint="step executions" />
                                        <Stat label="Pipelines" value=format::count(s.pipelines) hint="saved definitions" />
                                        <Stat label="Log entries" value=format::count(s.log_entries) hint="stored lines" />
                                    </div>
                                    <Show when=move || empty>
                                        <section class="panel empty" data-testid="no-runs">
                                            <h2>"No pipeline runs yet"</h2>
                                            <p>
                                                "Every run pipescope executes or receives is stored here and appears on this page "
                                                "the moment it starts: its steps, the exact prompts sent, the responses streaming back, "
                                                "tokens, cost and latency."
                                            </p>
                                        </section>
                                    </Show>
                                }
                                    .into_any()
                            }
                            Err(e) => {
                                view! {
                                    <section class="panel error" role="alert">
                                        <h2>"The store could not be read"</h2>
                                        <p>{e.to_string()}</p>
                                    </section>
                                }
                                    .into_any()
                            }
                        }
                    })}
                </Suspense>
            </main>
        </div>
    }
}
