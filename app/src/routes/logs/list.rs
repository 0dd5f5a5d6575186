//! The lines as a virtualised list: a scrolling box as tall as every line held, with only the
//! rows in view (and a few around them) in the DOM, each at its index times the row height.
//! Scrolling up pauses following the tail and, near the top, reads the older page; the bar
//! "N new lines — jump to latest" brings the tail back.

use leptos::{either::Either, prelude::*};

use super::{
    filter::level_icon,
    layout::{self, ROW_HEIGHT},
    lines::LogView,
    source::Loader,
};
use crate::{
    format,
    models::logs::LogRecord,
    rich::{highlight, pieces_view},
};

/// Rows rendered beyond each edge of the view, so a fast scroll shows no gap. Each one is made
/// again as the tail moves the view: more would cost every tail read while following.
const OVERSCAN: usize = 8;
/// The older page is read when the view comes this many rows from the top.
const LOAD_OLDER_WITHIN: f64 = 40.0;

#[component]
pub fn LogList(
    log: LogView,
    loader: Loader,
    /// The search, to mark in the messages.
    search: Signal<Option<String>>,
) -> impl IntoView {
    let (top, height) = (log.top, log.height);
    let layout = log.layout;
    // The rows' places follow the lines, the wrapping and the width.
    Effect::new(move |_| {
        layout.wrap.track();
        layout.columns.track();
        log.lines.with(|lines| layout.place(lines));
        // Wrapping with no row to measure until now.
        if layout.wrap.get_untracked() && layout.columns.get_untracked() == 0 {
            request_animation_frame(move || measure_columns(log));
        }
        // Rows changed height: the view stays at the tail, or at the row it showed on top.
        if log.following.get_untracked() {
            log.scroll_to_end();
        } else if let Some(index) = layout.anchor.get_value() {
            log.show_row(index);
        }
    });
    let range = Memo::new(move |_| {
        let count = log.lines.with(Vec::len);
        let first = layout.index_at(top.get());
        let last = layout.index_at(top.get() + height.get()) + 1;
        (
            first.saturating_sub(OVERSCAN).min(count),
            (last + OVERSCAN).min(count),
        )
    });
    // Each row with its place: a row's place and wrapping are fixed for its life (they are in
    // its key, so a row whose place changes is made again), which keeps a new row to two
    // reactive parts (its classes and its marked message): making rows is what a tail read
    // costs while following.
    let rows = move || {
        let (start, end) = range.get();
        let wrap = layout.wrap.get();
        log.lines.with(|lines| {
            lines[start..end]
                .iter()
                .enumerate()
                .map(|(k, line)| {
                    let index = start + k;
                    let place = Place {
                        top: layout.top(index),
                        height: wrap.then(|| layout.height(index)),
                    };
                    (place, line.clone())
                })
                .collect::<Vec<_>>()
        })
    };
    // Wrapped, the columns are measured when wrapping starts and when the window's width
    // changes.
    Effect::new(move |_| {
        if layout.wrap.get() {
            request_animation_frame(move || measure_columns(log));
        }
    });
    let resized = window_event_listener(leptos::ev::resize, move |_| measure_columns(log));
    on_cleanup(move || resized.remove());

    let on_scroll = move |_| {
        let Some(el) = log.viewport.get_untracked() else {
            return;
        };
        let now = el.scroll_top() as f64;
        top.set(now);
        height.set(el.client_height() as f64);
        // The end from the rows' places, not the list's `scrollHeight` (see `scroll_to_end`).
        let total = layout.total(log.lines.with_untracked(Vec::len));
        let at_end = now + el.client_height() as f64 >= total - ROW_HEIGHT / 2.0;
        if at_end {
            if !log.following.get_untracked() {
                log.following.set(true);
            }
            log.unseen.set(0);
        } else if now < log.last_top.get_value() {
            // The reader went up: the tail no longer moves the view. A wheel leaves the focus
            // on the body, where the page's keys (End) would not reach: the list takes it.
            log.following.set(false);
            if document()
                .active_element()
                .is_none_or(|e| e.tag_name() == "BODY")
            {
                let _ = el.focus();
            }
        }
        if now != log.last_top.get_value() {
            // The reader scrolled: the row kept on top when wrapping switched is theirs to move.
            log.layout.anchor.set_value(None);
        }
        log.last_top.set_value(now);
        if now < LOAD_OLDER_WITHIN * ROW_HEIGHT {
            loader.load_older();
        }
    };
    // The view's height once it is on the screen, and whenever the lines change (the first
    // page, a new filter).
    Effect::new(move |_| {
        log.lines.track();
        if let Some(el) = log.viewport.get() {
            height.set(el.client_height() as f64);
            top.set(el.scroll_top() as f64);
        }
    });
    let total = move || format!("{}px", layout.total(log.lines.with(Vec::len)));

    view! {
        <div class="logs-list-wrap">
            <div
                class="panel logs-list mono"
                id=super::LIST_ID
                node_ref=log.viewport
                on:scroll=on_scroll
                tabindex="0"
                role="log"
                aria-label="Log lines, oldest first"
                data-testid="logs-list"
                data-following=move || log.following.get().to_string()
                data-wrap=move || layout.wrap.get().to_string()
            >
                <span class="logs-probe" aria-hidden="true">{"0".repeat(100)}</span>
                <div class="logs-spacer" style:height=total>
                    <For each=rows key=row_key let:((place, line))>
                        <LogRow place line log search />
                    </For>
                </div>
            </div>
            <Show when=move || {
                log.lines.with(Vec::is_empty) && !log.loading.get() && log.failed.with(Option::is_none)
            }>
                <p class="logs-empty muted" data-testid="logs-empty">
                    "No line matches this filter yet; new ones show here as they are logged."
                </p>
            </Show>
            <Show when=move || log.unseen.get() != 0>
                <button
                    class="btn primary logs-new-lines"
                    data-testid="logs-new-lines"
                    on:click=move |_| log.jump_to_latest()
                >
                    {move || format!("{} new lines — jump to latest", format::count(log.unseen.get() as i64))}
                </button>
            </Show>
        </div>
    }
}

/// Measures the characters a wrapped line holds, if wrapping; places the rows again when it
/// changed.
fn measure_columns(log: LogView) {
    let layout = log.layout;
    // Called from a frame or a resize, which may come after the page is gone.
    if layout.wrap.try_get_untracked() != Some(true) {
        return;
    }
    if let Some(columns) = log
        .viewport
        .try_get_untracked()
        .flatten()
        .and_then(|el| message_columns(&el))
    {
        if columns != layout.columns.get_untracked() {
            layout.forget();
            layout.columns.set(columns);
        }
    }
}

/// Characters one wrapped line of the message column holds: its width over the width of one
/// character (from the list's hidden probe of a hundred), or None while no row is rendered.
fn message_columns(list: &leptos::web_sys::HtmlDivElement) -> Option<usize> {
    use leptos::wasm_bindgen::JsCast;
    let probe = list
        .query_selector(".logs-probe")
        .ok()??
        .dyn_into::<leptos::web_sys::HtmlElement>()
        .ok()?;
    let message = list.query_selector(".logs-row .logs-message").ok()??;
    // A hundred characters: the width in whole pixels is then exact to a hundredth of one.
    let char_width = f64::from(probe.offset_width()) / 100.0;
    let width = f64::from(message.client_width());
    (char_width > 0.0 && width > 0.0).then(|| ((width / char_width).floor() as usize).max(1))
}

/// Where a row is: its top, and its height when wrapped (`None`: one line, not wrapped).
#[derive(Clone, Copy, PartialEq)]
struct Place {
    top: f64,
    height: Option<f64>,
}

/// A row is the same row while its line, place and wrapping are.
fn row_key((place, line): &(Place, LogRecord)) -> (i64, u64, Option<u64>) {
    (line.id, place.top.to_bits(), place.height.map(f64::to_bits))
}

#[component]
fn LogRow(
    place: Place,
    line: LogRecord,
    log: LogView,
    search: Signal<Option<String>>,
) -> impl IntoView {
    let id = line.id;
    let level = line.level.as_str();
    let wrap = place.height.is_some();
    let fields = layout::fields_text(&line);
    // Wrapped, the fields follow the message (muted); else they have a column of their own.
    let text = if wrap {
        layout::wrapped_text(&line, &fields)
    } else {
        line.message.clone()
    };
    let message_len = line.message.len();
    // The message with the search's matches marked.
    let marked = move || {
        let marks = search.with(|q| {
            q.as_deref()
                .map(|q| highlight::matches(&text, q))
                .unwrap_or_default()
        });
        let tokens = if text.len() > message_len {
            vec![(message_len..text.len(), highlight::Token::Comment)]
        } else {
            Vec::new()
        };
        pieces_view(&text, &tokens, &marks)
    };
    let run = line.run.map(|run| {
        let short = run.to_string()[..8].to_owned();
        view! {
            <a
                href=format!("/runs/{run}")
                title=format!("run {run} of {}", line.pipeline.clone().unwrap_or_default())
                data-testid="log-run"
                on:click=|ev| ev.stop_propagation()
            >
                {short}
            </a>
        }
    });
    view! {
        <div
            class=move || {
                let mut class = format!("logs-row level-{level}");
                if log.selected.get() == Some(id) {
                    class.push_str(" selected");
                }
                if log.current_match.get() == Some(id) {
                    class.push_str(" current-match");
                }
                class
            }
            style:top=format!("{}px", place.top)
            style:height=place.height.map(|height| format!("{height}px"))
            data-testid="log-line"
            data-id=id.to_string()
            data-level=level
            on:click=move |_| log.selected.update(|s| *s = if *s == Some(id) { None } else { Some(id) })
        >
            <time class="logs-time" datetime=line.at.to_rfc3339() title=format::date_time(&line.at)>
                {format::clock_millis(&line.at).trim_end_matches(" UTC").to_owned()}
            </time>
            <span class="logs-level">
                <span aria-hidden="true">{level_icon(line.level)}</span>
                " "
                {level}
            </span>
            <span class="logs-run">{run.map(Either::Left).unwrap_or(Either::Right(view! { <span class="muted">"pipescope"</span> }))}</span>
            <span class="logs-step" title=line.step.clone()>{line.step.clone()}</span>
            <span class="logs-message" data-testid="log-message">{marked}</span>
            {(!wrap).then(|| view! { <span class="logs-fields" title=fields.clone()>{fields.clone()}</span> })}
        </div>
    }
}

/// The selected line whole: its context as key and value, and the line as coloured JSON.
#[component]
pub fn LineDetail(log: LogView) -> impl IntoView {
    let line = move || {
        let id = log.selected.get()?;
        log.lines
            .with(|lines| lines.iter().rev().find(|l| l.id == id).cloned())
    };
    // The detail is below the list: a click on a row brings it onto the screen.
    let panel = NodeRef::<leptos::html::Section>::new();
    Effect::new(move |_| {
        if let Some(el) = panel.get() {
            el.scroll_into_view_with_bool(false);
        }
    });
    view! {
        {move || line().map(|line| {
            let json = serde_json::to_string_pretty(&line).unwrap_or_default();
            let coloured = pieces_view(&json, &highlight::syntax(&json), &[]);
            let context = (!line.context.is_empty()).then(|| view! {
                <dl class="params mono small logs-context" data-testid="log-context">
                    {line.context.iter().map(|(key, value)| view! {
                        <div><dt>{key.clone()}</dt><dd>{format::plain(value)}</dd></div>
                    }).collect_view()}
                </dl>
            });
            view! {
                <section class="panel logs-detail" node_ref=panel data-testid="log-detail" aria-label="The selected line">
                    <header>
                        <h2>"Line " {line.id}</h2>
                        <button class="btn small" on:click=move |_| log.selected.set(None)>"Close"</button>
                    </header>
                    {context}
                    <pre class="mono small" data-testid="log-json">{coloured}</pre>
                </section>
            }
        })}
    }
}
