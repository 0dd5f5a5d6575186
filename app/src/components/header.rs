use std::time::Duration;

use leptos::prelude::*;

use crate::{
    format,
    functions::get_health,
    live::LiveStore,
    models::{Health, HealthStatus},
};

/// A page of the pipelines section, for the navigation (the dashboard's pages have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `/pipelines`
    List,
    /// `/pipelines/new`, `/pipelines/{name}/edit`
    Studio,
    /// `/providers`
    Providers,
    /// `/logs`
    Logs,
    /// `/runs`
    History,
}

/// The dashboard's top bar: brand, active pipelines and server health. Health is loaded through a
/// server function on the server for the first paint; the uptime then ticks in the browser, and
/// the health panel re-checks on demand.
#[component]
pub fn Header(
    /// The page's live store: adds the stream's state and the live counters.
    #[prop(optional)]
    live: Option<LiveStore>,
    /// The page's place in the navigation: a page of the pipelines section, or the dashboard's
    /// (None).
    #[prop(optional)]
    section: Option<Section>,
) -> impl IntoView {
    let health = Resource::new(|| (), |_| get_health());
    let panel_open = RwSignal::new(false);

    // Seconds since hydration; added to the server's uptime so it ticks without asking again.
    let tick = RwSignal::new(0u64);
    Effect::new(move |_| {
        if let Ok(handle) =
            set_interval_with_handle(move || tick.update(|t| *t += 1), Duration::from_secs(1))
        {
            on_cleanup(move || handle.clear());
        }
    });

    // The link of the page's part of the app: the dashboard, the pipelines (list and studio),
    // the providers or the logs.
    let part = |s: Option<Section>| match s {
        None => 0,
        Some(Section::List | Section::Studio) => 1,
        Some(Section::Providers) => 2,
        Some(Section::Logs) => 3,
        Some(Section::History) => 4,
    };
    let current = move |link: Option<Section>| (part(link) == part(section)).then_some("page");
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true"></span>
                <span class="brand-name">"pipescope"</span>
            </a>
            <nav class="topnav">
                <a href="/" aria-current=current(None)>"Dashboard"</a>
                <a href="/pipelines" aria-current=current(Some(Section::List)) data-testid="nav-pipelines">"Pipelines"</a>
                <a href="/providers" aria-current=current(Some(Section::Providers)) data-testid="nav-providers">"Providers"</a>
                <a href="/runs" aria-current=current(Some(Section::History)) data-testid="nav-history">"History"</a>
                <a href="/logs" aria-current=current(Some(Section::Logs)) data-testid="nav-logs">"Logs"</a>
            </nav>
            <ThemeToggle />
            <div class="topbar-status">
                {live.map(|store| view! { <LiveChips store /> })}
                <Transition fallback=|| view! { <span class="chip muted">"checking health…"</span> }>
                    {move || Suspend::new(async move {
                        match health.await {
                            Ok(h) => {
                                let started_tick = tick.get_untracked();
                                view! {
                                    <HealthSummary
                                        health=h
                                        uptime=Signal::derive(move || tick.get().saturating_sub(started_tick))
                                        panel_open
                                        recheck=Callback::new(move |_| health.refetch())
                                    />
                                }
                                    .into_any()
                            }
                            Err(e) => {
                                view! {
                                    <span class="chip bad" role="alert">
                                        "health unavailable: " {e.to_string()}
                                    </span>
                                }
                                    .into_any()
                            }
                        }
                    })}
                </Transition>
            </div>
        </header>
    }
}

#[component]
fn HealthSummary(
    health: Health,
    /// Seconds elapsed in the browser since `health` was checked.
    uptime: Signal<u64>,
    panel_open: RwSignal<bool>,
    recheck: Callback<()>,
) -> impl IntoView {
    let base_uptime = health.uptime_secs;
    let uptime_text = move || format::uptime(base_uptime + uptime.get());
    let ok = health.status == HealthStatus::Ok;
    let db = health.database.clone();
    let db_text = if db.reachable {
        format!(
            "{} · {}",
            db.mode.label(),
            db.latency_ms.map(format::millis).unwrap_or_default()
        )
    } else {
        "unreachable".to_string()
    };
    let checked_at = format::clock_millis(&health.checked_at);
    let started_at = format::date_time(&health.started_at);

    view! {
        <div class="chip" title="Time since this server started">
            <span class="chip-label">"uptime"</span>
            <span class="chip-value mono" data-testid="uptime">{uptime_text}</span>
        </div>
        <div class="health-anchor">
            <button
                class="chip health"
                class:ok=ok
                class:bad=!ok
                data-testid="health-toggle"
                aria-expanded=move || panel_open.get().to_string()
                aria-controls="health-panel"
                on:click=move |_| panel_open.update(|o| *o = !*o)
            >
                <span class="dot" aria-hidden="true"></span>
                <span class="chip-label">"database"</span>
                <span class="chip-value" data-testid="db-status">{db_text}</span>
            </button>
            <Show when=move || panel_open.get()>
                <section id="health-panel" class="popover" data-testid="health-panel" aria-label="Server health">
                    <h2>"Server health"</h2>
                    <dl>
                        <dt>"Status"</dt>
                        <dd data-testid="health-status">{if ok { "ok" } else { "degraded" }}</dd>
                        <dt>"Version"</dt>
                        <dd class="mono" data-testid="version">{health.version.clone()}</dd>
                        <dt>"Started"</dt>
                        <dd class="mono">{started_at.clone()}</dd>
                        <dt>"Database"</dt>
                        <dd>
                            {db.mode.label()} " Postgres "
                            {db.server_version.clone().unwrap_or_default()}
                        </dd>
                        <dt>"Round trip"</dt>
                        <dd class="mono">{db.latency_ms.map(format::millis).unwrap_or_else(|| "—".into())}</dd>
                        {db.error.clone().map(|e| view! {
                            <dt>"Error"</dt>
                            <dd class="error-text">{e}</dd>
                        })}
                        <dt>"Running"</dt>
                        <dd>{format::count(health.running_executions)} " executions"</dd>
                    </dl>
                    <footer>
                        <span class="muted">"checked " <span class="mono" data-testid="checked-at">{checked_at.clone()}</span></span>
                        <button class="btn" data-testid="health-recheck" on:click=move |_| recheck.run(())>
                            "Check again"
                        </button>
                    </footer>
                </section>
            </Show>
        </div>
    }
}

/// The stream's state and the live totals. The dot turns within seconds when the stream drops
/// (the browser reports it, or no heartbeat arrives).
#[component]
fn LiveChips(store: LiveStore) -> impl IntoView {
    let connection = store.connection.clone();
    let state = Signal::derive(move || connection.get());
    let heartbeat = store.last_heartbeat.clone();
    let title = move || match heartbeat.get() {
        Some(at) => format!("last heartbeat {}", format::clock_millis(&at)),
        None => "no heartbeat yet".to_owned(),
    };
    let runs = store.runs.clone();
    let active = move || runs.read().iter().filter(|r| r.is_active()).count() as i64;
    let tokens = store.tokens_total.clone();
    let cost = store.cost_total_usd.clone();
    let error_rate = store.error_rate.clone();
    view! {
        <div
            class="chip conn"
            data-state=move || state.get().label()
            data-testid="connection"
            title=title
            role="status"
        >
            <span class="dot" aria-hidden="true"></span>
            <span class="chip-value conn-label">{move || state.get().label()}</span>
        </div>
        <div class="chip" data-testid="active-pipelines" title="Runs in progress">
            <span class="chip-label">"active"</span>
            <span class="chip-value">{move || format::count(active())}</span>
        </div>
        <div class="chip" data-testid="tokens-total" title="Tokens used by every run">
            <span class="chip-label">"tokens"</span>
            <span class="chip-value mono num">{move || format::count(tokens.get())}</span>
        </div>
        <div class="chip" data-testid="cost-total" title="Estimated cost of every run">
            <span class="chip-label">"cost"</span>
            <span class="chip-value mono num">{move || format::usd(cost.get())}</span>
        </div>
        <div class="chip" data-testid="error-rate" title="Failed share of the steps finished in the last minute">
            <span class="chip-label">"errors"</span>
            <span class="chip-value mono num">{move || format!("{:.1}%", error_rate.get() * 100.0)}</span>
        </div>
    }
}

/// The key under which the chosen theme is remembered in the browser.
const THEME_KEY: &str = "pipescope-theme";

/// Dark by default; the choice is kept in `localStorage` and applied before the first paint by
/// the document's head script (see `shell`), so a light page never flashes dark.
#[component]
fn ThemeToggle() -> impl IntoView {
    let light = RwSignal::new(false);
    Effect::new(move |_| light.set(current_theme().as_deref() == Some("light")));
    let toggle = move |_| {
        let next = !light.get_untracked();
        light.set(next);
        apply_theme(if next { "light" } else { "dark" });
    };
    view! {
        <button
            class="chip theme-toggle"
            data-testid="theme-toggle"
            title="Switch between the dark and the light theme"
            aria-label="Light theme"
            aria-pressed=move || light.get().to_string()
            on:click=toggle
        >
            <span aria-hidden="true">{move || if light.get() { "☾" } else { "☀" }}</span>
        </button>
    }
}

fn current_theme() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        document().document_element()?.get_attribute("data-theme")
    }
    #[cfg(not(feature = "hydrate"))]
    None
}

fn apply_theme(theme: &str) {
    #[cfg(feature = "hydrate")]
    {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-theme", theme);
        }
        if let Ok(Some(storage)) = window().local_storage() {
            let _ = storage.set_item(THEME_KEY, theme);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (theme, THEME_KEY);
}

/// The head script that applies a remembered theme before the page paints.
pub fn theme_script() -> String {
    format!(
        "try{{var t=localStorage.getItem('{THEME_KEY}');if(t==='light'||t==='dark')\
         document.documentElement.setAttribute('data-theme',t)}}catch(e){{}}"
    )
}
