use std::time::Duration;

use leptos::prelude::*;

use super::format;
use crate::{
    functions::get_health,
    models::{Health, HealthStatus},
};

/// The dashboard's top bar: brand, active pipelines and server health. Health is loaded through a
/// server function on the server for the first paint; the uptime then ticks in the browser, and
/// the health panel re-checks on demand.
#[component]
pub fn Header() -> impl IntoView {
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

    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true"></span>
                <span class="brand-name">"pipescope"</span>
            </a>
            <nav class="topnav">
                <a href="/" aria-current="page">"Dashboard"</a>
            </nav>
            <div class="topbar-status">
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
        <div class="chip" data-testid="active-pipelines" title="Executions running now">
            <span class="chip-label">"active"</span>
            <span class="chip-value">{format::count(health.running_executions)}</span>
        </div>
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
