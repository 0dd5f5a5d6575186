//! Quadrant 4: live performance charts, drawn as inline SVG from the metrics history. No chart
//! library: a polyline per series is all these need, it costs a few kilobytes of WASM instead of
//! a JavaScript or Rust charting bundle, and each chart re-renders only its own `points`
//! attribute when `metrics:updated` arrives.

use leptos::prelude::*;

use super::panels::CollapseToggle;
use crate::{format, live::LiveStore, models::MetricsSample};

const W: f64 = 300.0;
const H: f64 = 64.0;

#[component]
pub fn MetricsPanel(store: LiveStore) -> impl IntoView {
    let metrics = store.metrics.clone();
    let series = move |pick: fn(&MetricsSample) -> Option<f64>| {
        let metrics = metrics.clone();
        Signal::derive(move || metrics.read().iter().map(pick).collect::<Vec<_>>())
    };
    let latest = {
        let metrics = store.metrics.clone();
        move |pick: fn(&MetricsSample) -> Option<f64>| {
            let metrics = metrics.clone();
            Signal::derive(move || metrics.read().back().and_then(pick))
        }
    };
    view! {
        <section class="quad" data-panel="metrics" aria-labelledby="metrics-title" data-testid="metrics">
            <header class="quad-head">
                <CollapseToggle panel="metrics" />
                <h2 id="metrics-title">"Performance"</h2>
                <span class="muted small">"last " {move || store.metrics.read().len()} " samples"</span>
            </header>
            <div class="charts">
                <Chart
                    title="Tokens"
                    value=Signal::derive({ let l = latest(|m| Some(m.tokens_total as f64)); move || l.get().map(|v| format::count(v as i64)).unwrap_or_else(|| "—".into()) })
                    lines=vec![series(|m| Some(m.tokens_total as f64))]
                />
                <Chart
                    title="Cost"
                    value=Signal::derive({ let l = latest(|m| Some(m.cost_total_usd)); move || l.get().map(format::usd).unwrap_or_else(|| "—".into()) })
                    lines=vec![series(|m| Some(m.cost_total_usd))]
                />
                <Chart
                    title="Latency p50/95/99"
                    value=Signal::derive({
                        let (a, b, c) = (latest(|m| m.latency_p50_ms), latest(|m| m.latency_p95_ms), latest(|m| m.latency_p99_ms));
                        move || match (a.get(), b.get(), c.get()) {
                            (Some(a), Some(b), Some(c)) => format!(
                                "{} / {} / {}",
                                format::duration_ms(a as i64),
                                format::duration_ms(b as i64),
                                format::duration_ms(c as i64)
                            ),
                            _ => "—".into(),
                        }
                    })
                    lines=vec![
                        series(|m| m.latency_p50_ms),
                        series(|m| m.latency_p95_ms),
                        series(|m| m.latency_p99_ms),
                    ]
                />
                <Chart
                    title="Error rate"
                    value=Signal::derive({ let l = latest(|m| Some(m.error_rate)); move || l.get().map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "—".into()) })
                    lines=vec![series(|m| Some(m.error_rate))]
                    min_top=0.25
                />
                <Chart
                    title="Throughput"
                    value=Signal::derive({ let l = latest(|m| Some(m.throughput_per_min)); move || l.get().map(|v| format!("{v:.0} steps/min")).unwrap_or_else(|| "—".into()) })
                    lines=vec![series(|m| Some(m.throughput_per_min))]
                />
            </div>
        </section>
    }
}

#[component]
fn Chart(
    title: &'static str,
    value: Signal<String>,
    lines: Vec<Signal<Vec<Option<f64>>>>,
    /// The scale's top is at least this, so small values look small (an error rate of 0.5 %
    /// must not fill the chart).
    #[prop(optional)]
    min_top: f64,
) -> impl IntoView {
    // One scale for all series of a chart (p99 above p95 above p50).
    let all = lines.clone();
    let max = Signal::derive(move || {
        all.iter()
            .flat_map(|l| l.get().into_iter().flatten())
            .fold(min_top, f64::max)
    });
    let paths = lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let points = move || polyline(&line.get(), max.get());
            view! { <polyline class=format!("series s{i}") points=points /> }
        })
        .collect_view();
    view! {
        <figure class="chart">
            <figcaption>
                <span>{title}</span>
                <span class="mono chart-value">{move || value.get()}</span>
            </figcaption>
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label=title>
                {paths}
            </svg>
        </figure>
    }
}

/// SVG points for `values` scaled into the chart; gaps (no value) are skipped.
fn polyline(values: &[Option<f64>], max: f64) -> String {
    if values.len() < 2 {
        return String::new();
    }
    let max = if max > 0.0 { max } else { 1.0 };
    let step = W / (values.len() - 1) as f64;
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|v| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 * step,
                    H - 2.0 - (v / max) * (H - 4.0)
                )
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}
