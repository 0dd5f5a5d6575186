//! The history's filter bar: statuses (each a toggle) and the order, applied at once; search,
//! pipeline, provider, model, batch and time range, applied with *Apply* or Enter; and the
//! export links of the filter shown. Applying navigates, so the address is the filter; a new
//! filter starts again from the first page.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::history_href;
use crate::components::filter_field::FilterField;
use crate::models::{
    history::{HistoryFilter, HistoryFilterError, HistorySort},
    RunStatus,
};

#[component]
pub fn FilterBar(
    /// The filter in the address (an error: it cannot be used).
    filter: Memo<Result<HistoryFilter, HistoryFilterError>>,
) -> impl IntoView {
    let navigate = use_navigate();
    let go = move |next: &HistoryFilter| navigate(&history_href(next), Default::default());
    let shown = move || filter.get().unwrap_or_default().first_page();

    let typed = Typed::default();
    let problem = RwSignal::new(None::<String>);
    // The fields show the address's filter, again after back or forward.
    Effect::new(move |_| {
        typed.show(&shown());
        problem.set(None);
    });

    let go_status = go.clone();
    let toggle = move |status: RunStatus| {
        let mut next = shown();
        if let Some(at) = next.statuses.iter().position(|s| *s == status) {
            next.statuses.remove(at);
        } else {
            next.statuses.push(status);
            next.statuses
                .sort_by_key(|s| RunStatus::ALL.iter().position(|a| a == s));
        }
        go_status(&next);
    };
    let go_sort = go.clone();
    let sort = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        if let Some(sort) = HistorySort::ALL.into_iter().find(|s| s.as_str() == value) {
            go_sort(&HistoryFilter { sort, ..shown() });
        }
    };
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match typed.filter(shown()) {
            Ok(next) => {
                problem.set(None);
                go(&next);
            }
            Err(message) => problem.set(Some(message)),
        }
    };

    view! {
        <form class="panel logs-filter history-filter" on:submit=apply data-testid="history-filter" role="search">
            <fieldset class="logs-levels">
                <legend class="visually-hidden">"Statuses"</legend>
                {RunStatus::ALL
                    .into_iter()
                    .map(|status| {
                        let toggle = toggle.clone();
                        view! {
                            <button
                                type="button"
                                class="logs-level-toggle"
                                aria-pressed=move || shown().statuses.contains(&status).to_string()
                                data-testid=format!("history-status-{}", status.as_str())
                                title="List runs in this state (none pressed: every state)"
                                on:click=move |_| toggle(status)
                            >
                                {status.label()}
                            </button>
                        }
                    })
                    .collect_view()}
            </fieldset>
            <label class="logs-field">
                <span>"Order"</span>
                <select name="sort" data-testid="history-sort" on:change=sort>
                    {HistorySort::ALL
                        .into_iter()
                        .map(|s| view! {
                            <option value=s.as_str() selected=move || shown().sort == s>{s.label()}</option>
                        })
                        .collect_view()}
                </select>
            </label>
            <FilterField label="Search prompts and responses" name="q" value=typed.q hint="words, \"a phrase\", -word" prefix="history" />
            <FilterField label="Pipeline" name="pipeline" value=typed.pipeline hint="name" prefix="history" />
            <FilterField label="Provider" name="provider" value=typed.provider hint="openai" prefix="history" />
            <FilterField label="Model" name="model" value=typed.model hint="model" prefix="history" />
            <FilterField label="Batch" name="batch" value=typed.batch hint="batch id" prefix="history" />
            <FilterField label="From" name="from" value=typed.from hint="2026-12-06T10:00:00Z" prefix="history" />
            <FilterField label="To" name="to" value=typed.to hint="2026-12-06T11:00:00Z" prefix="history" />
            <div class="logs-filter-actions">
                <button type="submit" class="btn primary small" data-testid="history-apply">"Apply"</button>
                <a class="btn small" href="/runs" data-testid="history-clear">"Clear"</a>
            </div>
            {move || problem.get().map(|message| view! {
                <p class="error-text logs-filter-problem" role="alert" data-testid="history-filter-problem">{message}</p>
            })}
        </form>
    }
}

/// The text fields as typed.
#[derive(Clone, Copy)]
struct Typed {
    q: RwSignal<String>,
    pipeline: RwSignal<String>,
    provider: RwSignal<String>,
    model: RwSignal<String>,
    batch: RwSignal<String>,
    from: RwSignal<String>,
    to: RwSignal<String>,
}

impl Default for Typed {
    fn default() -> Self {
        let field = || RwSignal::new(String::new());
        Self {
            q: field(),
            pipeline: field(),
            provider: field(),
            model: field(),
            batch: field(),
            from: field(),
            to: field(),
        }
    }
}

impl Typed {
    /// Shows `filter` in the fields.
    fn show(&self, filter: &HistoryFilter) {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        self.q.set(text(&filter.q));
        self.pipeline.set(text(&filter.pipeline));
        self.provider.set(text(&filter.provider));
        self.model.set(text(&filter.model));
        self.batch
            .set(filter.batch.map(|b| b.to_string()).unwrap_or_default());
        self.from
            .set(filter.from.map(|t| t.to_rfc3339()).unwrap_or_default());
        self.to
            .set(filter.to.map(|t| t.to_rfc3339()).unwrap_or_default());
    }

    /// The filter the fields describe, with `current`'s statuses and order, from its first
    /// page; or what to fix.
    fn filter(&self, current: HistoryFilter) -> Result<HistoryFilter, String> {
        let text = |s: RwSignal<String>| {
            Some(s.get_untracked().trim().to_owned()).filter(|s| !s.is_empty())
        };
        let time = |s: RwSignal<String>, field: &str| -> Result<Option<DateTime<Utc>>, String> {
            text(s)
                .map(|t| {
                    DateTime::parse_from_rfc3339(&t)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            format!(
                                "{field}: {t:?} is not a time; write it as 2026-12-06T10:00:00Z"
                            )
                        })
                })
                .transpose()
        };
        let filter = HistoryFilter {
            q: text(self.q),
            pipeline: text(self.pipeline),
            provider: text(self.provider),
            model: text(self.model),
            batch: text(self.batch)
                .map(|b| {
                    b.parse()
                        .map_err(|_| format!("batch: {b:?} is not a batch id (a UUID)"))
                })
                .transpose()?,
            from: time(self.from, "from")?,
            to: time(self.to, "to")?,
            after: None,
            ..current
        };
        filter
            .validate()
            .map_err(|e| format!("{}: {}", e.field, e.message))?;
        Ok(filter)
    }
}

/// Links to every run of the filter as a file, streamed by the server.
#[component]
pub fn ExportLinks(filter: Memo<Result<HistoryFilter, HistoryFilterError>>) -> impl IntoView {
    let href = move |format: &str| {
        let query = filter
            .get()
            .map(|f| {
                HistoryFilter {
                    limit: None,
                    after: None,
                    ..f
                }
                .to_query()
            })
            .unwrap_or_default();
        match query.is_empty() {
            true => format!("/api/history/export?format={format}"),
            false => format!("/api/history/export?{query}&format={format}"),
        }
    };
    // A filter that cannot be used exports nothing (its links would otherwise fall back to
    // every run).
    view! {
        <Show when=move || filter.with(Result::is_ok)>
        <div class="logs-export" role="group" aria-label="Export">
            <span class="muted small">"Export"</span>
            <a class="btn small" href=move || href("csv") download="" data-testid="history-export-csv">"CSV"</a>
            <a class="btn small" href=move || href("jsonl") download="" data-testid="history-export-jsonl">"JSON lines"</a>
        </div>
        </Show>
    }
}
