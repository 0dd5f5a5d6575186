//! `/logs`: the stored log lines a filter selects, newest at the bottom, older pages read as the
//! list is scrolled up, the tail followed live. The filter is the address's query string
//! ([`LogFilter::from_query`]); one that cannot be used shows what to fix instead of lines.
//! Files: filter.rs (the filter bar and export links), lines.rs (the lines held and the
//! list's state), source.rs (reading pages and the tail), layout.rs (where rows sit, wrapped or
//! not), list.rs (the virtualised rows and a line's detail).

mod filter;
mod layout;
mod lines;
mod list;
mod source;

use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::{format, models::logs::LogFilter};

/// The id of the list of lines (Ctrl+L focuses it).
pub const LIST_ID: &str = "log-lines";

#[component]
pub fn LogsPage() -> impl IntoView {
    let location = use_location();
    let filter = Memo::new(move |_| location.search.with(|s| LogFilter::from_query(s)));
    let log = lines::LogView::new();
    let loader = source::Loader::new(log);
    Effect::new(move |_| loader.show(filter.get().ok()));
    source::follow_stream(loader);
    let search = Signal::derive(move || filter.with(|f| f.as_ref().ok().and_then(|f| f.q.clone())));

    // Next and previous match of the search among the lines held; going back past the oldest
    // held reads the older page, so the search goes on there.
    let find_note = RwSignal::new(None::<&'static str>);
    let find = move |forward: bool| {
        let Some(q) = search.get_untracked() else {
            return;
        };
        if log.go_to_match(&q, forward) {
            find_note.set(None);
        } else if !forward && log.older.get_untracked().is_some() {
            loader.load_older();
            find_note.set(Some("reading older lines to search…"));
        } else {
            find_note.set(Some("no further match in the lines held"));
        }
    };
    // `End` follows the tail again; `n` and `N` go to the next and previous match. Not while
    // typing into a field. (Scrolling the list up gives it the focus if nothing had it, so the
    // keys work after a wheel scroll too.)
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let typing = event_target::<leptos::web_sys::Element>(&ev).tag_name() == "INPUT";
        if typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match ev.key().as_str() {
            "End" => {
                ev.prevent_default();
                log.jump_to_latest();
            }
            "n" if search.with_untracked(Option::is_some) => find(true),
            "N" if search.with_untracked(Option::is_some) => find(false),
            _ => {}
        }
    };
    let toggle_follow = move |_| {
        if log.following.get_untracked() {
            log.pause();
        } else {
            log.jump_to_latest();
        }
    };
    let toggle_wrap = move |_| {
        let top = log
            .viewport
            .get_untracked()
            .map_or(0.0, |el| f64::from(el.scroll_top()));
        log.layout.toggle_wrap(top);
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
                <div class="logs-toolbar">
                    <p class="muted small logs-status" data-testid="logs-status" aria-live="polite">
                        <span data-testid="logs-count">{status}</span>
                        <Show when=move || !log.following.get()>
                            " · paused (End follows the newest)"
                        </Show>
                    </p>
                    <Show when=move || search.with(Option::is_some)>
                        <div class="logs-find" role="group" aria-label="Matches of the search">
                            <button class="btn small" data-testid="logs-find-previous" title="The previous match (N)" on:click=move |_| find(false)>
                                "↑ Previous"
                            </button>
                            <button class="btn small" data-testid="logs-find-next" title="The next match (n)" on:click=move |_| find(true)>
                                "↓ Next"
                            </button>
                            {move || find_note.get().map(|note| view! {
                                <span class="muted small" data-testid="logs-find-note">{note}</span>
                            })}
                        </div>
                    </Show>
                    <div class="logs-switches" role="group" aria-label="View">
                        <button
                            class="btn small"
                            aria-pressed=move || log.following.get().to_string()
                            data-testid="logs-follow"
                            title="Keep the newest line in view (End)"
                            on:click=toggle_follow
                        >
                            "Follow"
                        </button>
                        <button
                            class="btn small"
                            aria-pressed=move || log.layout.wrap.get().to_string()
                            data-testid="logs-wrap"
                            title="Wrap long lines instead of cutting them"
                            on:click=toggle_wrap
                        >
                            "Wrap"
                        </button>
                    </div>
                </div>
                <list::LogList log loader search />
                <list::LineDetail log />
            </Show>
        </main>
    }
}
