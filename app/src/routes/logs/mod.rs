//! `/logs`: the stored log lines a filter selects, newest at the bottom, older pages read as the
//! list is scrolled up, the tail followed live. The filter is the address's query string
//! ([`LogFilter::from_query`]); one that cannot be used shows what to fix instead of lines.
//! Files: filter.rs (the filter bar and export links), lines.rs (the lines held and the
//! list's state), source.rs (reading pages and the tail), list.rs (the virtualised rows).

mod filter;
mod lines;
mod list;
mod source;

use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::{format, models::logs::LogFilter};

#[component]
pub fn LogsPage() -> impl IntoView {
    let location = use_location();
    let filter = Memo::new(move |_| location.search.with(|s| LogFilter::from_query(s)));
    let log = lines::LogView::new();
    let loader = source::Loader::new(log);
    Effect::new(move |_| loader.show(filter.get().ok()));
    source::follow_stream(loader);
    let search = Signal::derive(move || filter.with(|f| f.as_ref().ok().and_then(|f| f.q.clone())));

    // `End` follows the tail again, unless it is typed into a field.
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let typing = event_target::<leptos::web_sys::Element>(&ev).tag_name() == "INPUT";
        if ev.key() == "End" && !typing {
            ev.prevent_default();
            log.jump_to_latest();
        }
    };
    let status = move || {
        let count = format::count(log.lines.with(Vec::len) as i64);
        let start = if log.loading_older.get() {
            " · reading older lines…"
        } else if log.older.get().is_none() && !log.loading.get() {
            " · from the first line"
        } else {
            " · scroll up for older lines"
        };
        format!("{count} lines{start}")
    };
    view! {
        <main class="content logs-page" data-testid="logs-page" on:keydown=on_key>
            <div class="page-head logs-head">
                <h1>"Logs"</h1>
                <filter::ExportLinks filter />
            </div>
            <filter::FilterBar filter />
            {move || match filter.get() {
                Err(e) => Some(view! {
                    <section class="panel error" role="alert" data-testid="logs-error">
                        <h2>"This filter cannot be used"</h2>
                        <p>"`" {e.field} "`: " <span data-testid="logs-error-message">{e.message}</span></p>
                    </section>
                }.into_any()),
                Ok(_) => log.failed.get().map(|message| view! {
                    <section class="panel error" role="alert" data-testid="logs-error">
                        <h2>"The log could not be read"</h2>
                        <p data-testid="logs-error-message">{message}</p>
                    </section>
                }.into_any()),
            }}
            <Show when=move || filter.with(Result::is_ok)>
                <p class="muted small logs-status" data-testid="logs-status" aria-live="polite">
                    <span data-testid="logs-count">{status}</span>
                    <Show when=move || !log.following.get()>
                        " · paused (End follows the newest)"
                    </Show>
                </p>
                <list::LogList log loader search />
                <list::LineDetail log />
            </Show>
        </main>
    }
}
