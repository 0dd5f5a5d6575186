use std::time::Duration;

use chrono::Utc;
use leptos::{prelude::*, task::spawn_local};
use leptos_router::hooks::{use_navigate, use_params_map};
use uuid::Uuid;

use crate::{
    components::{
        charts::MetricsPanel,
        context_menu::{ContextMenu, RawDialog},
        header::Header,
        inspector::Inspector,
        overlays::Overlays,
        panels::{MobileTabs, Panels},
        prefetch_lazy_views,
        runs::RunsGrid,
        shortcuts::Shortcuts,
        switcher::QuickSwitcher,
        timeline::{StepTimeline, StepsTab},
    },
    error::AppError,
    functions::{get_execution, get_snapshot},
    live::{provide_live, RunDetail},
    models::{ExecutionDetail, Snapshot},
    rich::Colouring,
};

/// Which views a page shows around the same live state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `/`: the four quadrants.
    Dashboard,
    /// `/runs/{id}`: one execution, its timeline and inspector.
    Run,
    /// `/runs/{id}/steps/{step}`: the inspector, full page.
    Step,
}

/// `/`: the dashboard. Server-rendered complete (runs, the selected run's steps, its latest
/// prompt and the metrics history), then hydrated and live.
#[component]
pub fn DashboardPage() -> impl IntoView {
    view! { <LivePage view=View::Dashboard /> }
}

#[component]
pub fn RunPage() -> impl IntoView {
    view! { <LivePage view=View::Run /> }
}

#[component]
pub fn StepPage() -> impl IntoView {
    view! { <LivePage view=View::Step /> }
}

/// What the first paint needs: the snapshot, and the detail of the run shown first.
async fn load(
    run: Result<Option<Uuid>, String>,
) -> Result<(Snapshot, Option<ExecutionDetail>), AppError> {
    let run = run.map_err(|id| AppError::NotFound(format!("no run {id}: not a run id")))?;
    let snapshot = get_snapshot().await?;
    let first = run.or_else(|| {
        snapshot
            .active
            .first()
            .or_else(|| snapshot.recent.first())
            .map(|r| r.id)
    });
    let detail = match first {
        Some(id) => match get_execution(id).await {
            Ok(detail) => Some(detail),
            Err(AppError::NotFound(_)) if run.is_none() => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    Ok((snapshot, detail))
}

#[component]
fn LivePage(view: View) -> impl IntoView {
    let params = use_params_map();
    // `/runs/{id}` with an id that is no uuid is a run that does not exist, not the dashboard.
    let run_param = move || {
        params
            .read()
            .get("id")
            .map(|id| id.parse::<Uuid>().map_err(|_| id))
            .transpose()
    };
    let step_param = move || params.read().get("step");
    let data = Resource::new(run_param, load);
    // Set once the WASM has taken over the page, so tests (and curious users) can tell. What the
    // first paint did not need (the colours, the on-demand views) is fetched when the browser is
    // next idle: after the page shows it is hydrated, so the first load is what came before.
    let hydrated = RwSignal::new(false);
    let colouring = Colouring::provide();
    Effect::new(move |_| {
        hydrated.set(true);
        if let Some(owner) = Owner::current() {
            request_idle_callback(move || {
                owner.with(|| {
                    colouring.fetch();
                    prefetch_lazy_views();
                })
            });
        }
    });

    view! {
        <div class="page" data-hydrated=move || hydrated.get().to_string()>
            <Suspense fallback=|| view! { <Header /><div class="board skeleton" aria-busy="true"></div> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((snapshot, detail)) => view! {
                            <Live view snapshot detail step=step_param() />
                        }.into_any(),
                        Err(e) => {
                            let missing = matches!(e, AppError::NotFound(_));
                            #[cfg(feature = "ssr")]
                            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                                response.set_status(if missing {
                                    http::StatusCode::NOT_FOUND
                                } else {
                                    http::StatusCode::SERVICE_UNAVAILABLE
                                });
                            }
                            view! {
                                <Header />
                                <main class="content">
                                    <section class="panel error" role="alert">
                                        <h2>{if missing { "No such run" } else { "The dashboard could not be loaded" }}</h2>
                                        <p>{e.to_string()}</p>
                                        <a class="btn" href="/">"Back to the dashboard"</a>
                                    </section>
                                </main>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn Live(
    view: View,
    snapshot: Snapshot,
    detail: Option<ExecutionDetail>,
    step: Option<String>,
) -> impl IntoView {
    let store = provide_live(&snapshot);
    let selected = RwSignal::new(detail.as_ref().map(|d| d.id));
    let selected_step = RwSignal::new(step);
    if let Some(detail) = &detail {
        store.show_detail(RunDetail::new(detail));
    }

    // The clock behind elapsed times and running-step timers: the server's time in the first
    // paint, then ticking in the browser.
    let now = RwSignal::new(Utc::now());
    Effect::new(move |_| {
        if let Ok(handle) =
            set_interval_with_handle(move || now.set(Utc::now()), Duration::from_millis(500))
        {
            on_cleanup(move || handle.clear());
        }
    });
    let now = Signal::from(now);

    let tab = RwSignal::new(StepsTab::Timeline);
    let overlays = Overlays::new();
    let panels = Panels::new();
    provide_context(overlays);
    provide_context(panels);
    let navigate = use_navigate();
    // The quick switcher's choice: selected here on the dashboard, opened on its own page
    // elsewhere.
    let pick = Callback::new(move |id: Uuid| {
        if view == View::Dashboard {
            selected.set(Some(id));
            panels.mobile.set("steps");
        } else {
            navigate(&format!("/runs/{id}"), Default::default());
        }
    });

    // Choosing another run loads its steps; its events are held until they are in.
    Effect::new({
        let store = store.clone();
        move |previous: Option<Option<Uuid>>| {
            let id = selected.get();
            if let (Some(previous), Some(id)) = (previous, id) {
                if previous != Some(id) {
                    selected_step.set(None);
                    let store = store.clone();
                    spawn_local(async move {
                        if let Ok(detail) = get_execution(id).await {
                            // A quicker click on another run wins.
                            if selected.get_untracked() == Some(id) {
                                store.show_detail(RunDetail::new(&detail));
                            }
                        }
                    });
                }
            }
            id
        }
    });

    let detail_signal = {
        let detail = store.detail.clone();
        Signal::derive(move || detail.get())
    };
    let run_title = {
        let detail = store.detail.clone();
        move || detail.get().map(|d| d.pipeline.clone()).unwrap_or_default()
    };
    let run_link = move || selected.get().map(|id| format!("/runs/{id}"));
    view! {
        <Header live=store.clone() />
        <Shortcuts store=store.clone() selected selected_step overlays panels />
        <ContextMenu overlays store=store.clone() />
        <RawDialog overlays />
        <QuickSwitcher overlays store=store.clone() pick />
        {(view == View::Dashboard).then(|| view! { <MobileTabs panels /> })}
        <main
            class="board"
            data-view=format!("{view:?}").to_lowercase()
            data-tab=move || panels.mobile.get()
            data-collapsed=move || panels.collapsed_attr()
        >
            {match view {
                View::Dashboard => view! {
                    <RunsGrid store=store.clone() selected now />
                    <StepTimeline detail=detail_signal selected_step now tab />
                    <Inspector detail=detail_signal selected_step />
                    <MetricsPanel store=store.clone() />
                }.into_any(),
                View::Run => view! {
                    <div class="page-head wide">
                        <a href="/" class="back">"← Dashboard"</a>
                        <h1>{run_title}</h1>
                    </div>
                    <StepTimeline detail=detail_signal selected_step now tab />
                    <Inspector detail=detail_signal selected_step />
                }.into_any(),
                View::Step => view! {
                    <div class="page-head wide">
                        {move || run_link().map(|href| view! { <a href=href class="back">"← Run"</a> })}
                        <h1>{run_title}</h1>
                    </div>
                    <Inspector detail=detail_signal selected_step />
                }.into_any(),
            }}
        </main>
    }
}
