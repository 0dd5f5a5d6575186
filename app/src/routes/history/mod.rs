//! `/runs`: every run, engine and ingest, that a filter selects, a page at a time in the
//! chosen order, each row opening its run. The filter is the address's query string
//! ([`HistoryFilter::from_query`]), so a link shows the same runs and back and forward move
//! between filters and pages; one that cannot be used shows what to fix instead of runs.
//! Files: filter.rs (the filter bar and export links), table.rs (the page of runs, the
//! links to the first and next pages, and ticking two runs to compare), compare.rs
//! (`/compare`: two runs side by side).

mod compare;
mod filter;
mod table;

pub use compare::ComparePage;

use leptos::{either::EitherOf3, prelude::*};
use leptos_router::hooks::use_location;

use super::api::get_json;
use crate::models::history::{HistoryFilter, HistoryPage as Page};

/// The page's address for `filter`.
pub fn history_href(filter: &HistoryFilter) -> String {
    match filter.to_query() {
        query if query.is_empty() => "/runs".to_owned(),
        query => format!("/runs?{query}"),
    }
}

#[component]
pub fn HistoryPage() -> impl IntoView {
    let location = use_location();
    let filter = Memo::new(move |_| location.search.with(|s| HistoryFilter::from_query(s)));
    let page = LocalResource::new(move || {
        let filter = filter.get();
        async move {
            match filter {
                Ok(filter) => Some(
                    get_json::<Page>(&format!("/api/history?{}", filter.to_query()))
                        .await
                        .map(|page| (filter, page)),
                ),
                Err(_) => None,
            }
        }
    });
    // The table keeps its place while the next page loads (a Transition), and starts as a
    // panel of the same height, so nothing below it jumps.
    let skeleton = || view! { <div class="panel skeleton table-skeleton" aria-busy="true"></div> };
    view! {
        <main class="content history-page" data-testid="history-page">
            <div class="page-head logs-head">
                <h1>"History"</h1>
                <filter::ExportLinks filter />
            </div>
            <filter::FilterBar filter />
            {move || filter.get().err().map(|e| view! {
                <section class="panel error" role="alert" data-testid="history-error">
                    <h2>"This filter cannot be used"</h2>
                    <p>"`" {e.field} "`: " <span data-testid="history-error-message">{e.message}</span></p>
                </section>
            })}
            <Show when=move || filter.with(Result::is_ok)>
                <Transition fallback=skeleton>
                    {move || Suspend::new(async move {
                        match page.await {
                            Some(Ok((filter, page))) => EitherOf3::A(view! { <table::RunsTable filter page /> }),
                            Some(Err(message)) => EitherOf3::B(view! {
                                <section class="panel error" role="alert" data-testid="history-error">
                                    <h2>"The history could not be read"</h2>
                                    <p data-testid="history-error-message">{message}</p>
                                </section>
                            }),
                            None => EitherOf3::C(()),
                        }
                    })}
                </Transition>
            </Show>
        </main>
    }
}
