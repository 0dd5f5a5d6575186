//! A page of runs: when each started, its pipeline (the link to its run page), state, steps,
//! duration, tokens, cost and the models its steps used; then the links to the first page and
//! the next. Pages are addresses (`after` in the query string), so back returns to the last one.

use leptos::prelude::*;
use uuid::Uuid;

use super::history_href;
use crate::{
    components::runs::StatusBadge,
    format,
    models::history::{HistoryFilter, HistoryPage, HistoryRun},
};

#[component]
pub fn RunsTable(
    /// The filter the page was read with.
    filter: HistoryFilter,
    page: HistoryPage,
) -> impl IntoView {
    let count = page.runs.len();
    // The runs ticked for comparing, in the order ticked; a third drops the first.
    let selected = RwSignal::new(Vec::<Uuid>::new());
    let later = filter.after.is_some();
    let first = later.then(|| history_href(&filter.first_page()));
    let next = page.next.clone().map(|after| {
        history_href(&HistoryFilter {
            after: Some(after),
            ..filter.clone()
        })
    });
    // The search finds steps once they are indexed, just after they are stored: say so while
    // some wait, rather than let a run that is there look missing.
    let unindexed = (page.unindexed > 0).then(|| {
        let n = page.unindexed;
        view! {
            <span class="muted small" data-testid="history-unindexed">
                {format!(
                    " · {}{} newest step{} not searched yet (being indexed)",
                    format::count(n as i64),
                    if n >= 10_000 { "+" } else { "" },
                    if n == 1 { "" } else { "s" },
                )}
            </span>
        }
    });
    let empty = page.runs.is_empty().then(|| {
        view! {
            <p class="muted empty-row" data-testid="history-empty">
                {if later { "No more runs match this filter." } else { "No run matches this filter." }}
            </p>
        }
    });
    view! {
        <div class="panel table-wrap history-table">
            <table class="pipelines" data-testid="history-runs">
                <thead>
                    <tr>
                        <th scope="col"><span class="visually-hidden">"Compare"</span></th>
                        <th scope="col">"Started"</th>
                        <th scope="col">"Pipeline"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col" class="num">"Steps"</th>
                        <th scope="col" class="num">"Duration"</th>
                        <th scope="col" class="num">"Tokens"</th>
                        <th scope="col" class="num">"Cost"</th>
                        <th scope="col">"Models"</th>
                    </tr>
                </thead>
                <tbody>
                    {page.runs.into_iter().map(|run| view! { <RunRow run selected /> }).collect_view()}
                </tbody>
            </table>
            {empty}
        </div>
        <nav class="history-pager" aria-label="Pages">
            <span class="muted small" data-testid="history-count">
                {format!("{count} run{} on this page", if count == 1 { "" } else { "s" })}
                {if next.is_some() { "" } else if count > 0 { " · the last page" } else { "" }}
            </span>
            {unindexed}
            {move || match selected.with(Vec::len) {
                2 => {
                    let href = selected.with(|s| format!("/compare?a={}&b={}", s[0], s[1]));
                    view! { <a class="btn small primary" href=href data-testid="history-compare">"Compare the two selected"</a> }.into_any()
                }
                n => view! {
                    <span class="muted small" data-testid="history-compare-hint">
                        {format!("Tick two runs to compare them ({n} ticked)")}
                    </span>
                }.into_any(),
            }}
            {first.map(|href| view! { <a class="btn small" href=href data-testid="history-first">"← First page"</a> })}
            {next.map(|href| view! { <a class="btn small" href=href data-testid="history-next">"Next page →"</a> })}
        </nav>
    }
}

#[component]
fn RunRow(run: HistoryRun, selected: RwSignal<Vec<Uuid>>) -> impl IntoView {
    let summary = run.run;
    let id = summary.id;
    let toggle = move |_| {
        selected.update(|s| match s.iter().position(|x| *x == id) {
            Some(at) => {
                s.remove(at);
            }
            None => {
                s.push(id);
                if s.len() > 2 {
                    s.remove(0);
                }
            }
        })
    };
    let href = format!("/runs/{}", summary.id);
    let steps = match summary.steps_total {
        0 => format!("{}", summary.steps_completed),
        total => format!("{}/{total}", summary.steps_completed),
    };
    let duration = run
        .duration_ms
        .map(format::duration_ms)
        .unwrap_or_else(|| "—".to_owned());
    view! {
        <tr data-testid="history-run" data-run=summary.id.to_string()>
            <td class="history-pick">
                <input
                    type="checkbox"
                    aria-label="Select to compare"
                    data-testid="history-select"
                    prop:checked=move || selected.with(|s| s.contains(&id))
                    on:change=toggle
                />
            </td>
            <td class="mono nowrap">{format::date_time(&summary.started_at)}</td>
            <td>
                <a class="run-name" href=href data-testid="history-run-link">{summary.pipeline.clone()}</a>
                <div class="muted small mono">
                    {summary.id.to_string()[..8].to_owned()}
                    {(summary.source == "ingest").then_some(" · ingest")}
                </div>
            </td>
            <td>
                <StatusBadge status=Signal::stored(summary.status) />
                {summary.error.clone().map(|e| view! {
                    <div class="history-error-text small" title=e.clone()>{format::clip(&e, 80)}</div>
                })}
            </td>
            <td class="num mono">{steps}</td>
            <td class="num mono">{duration}</td>
            <td class="num mono">{format::count(summary.total_tokens)}</td>
            <td class="num mono">{format::usd(summary.cost_usd)}</td>
            <td class="small mono history-models">{run.models.join(", ")}</td>
        </tr>
    }
}
