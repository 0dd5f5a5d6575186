//! The lines as a virtualised list: a scrolling box as tall as every line held, with only the
//! rows in view (and a few around them) in the DOM, each at its index times the row height.
//! Scrolling up pauses following the tail and, near the top, reads the older page; the bar
//! "N new lines — jump to latest" brings the tail back.

use leptos::{either::Either, prelude::*};

use super::{
    filter::level_icon,
    lines::{LogView, ROW_HEIGHT},
    source::Loader,
};
use crate::{format, models::logs::LogRecord, rich::highlight};

/// Rows rendered beyond each edge of the view, so a fast scroll shows no gap.
const OVERSCAN: usize = 20;
/// The older page is read when the view comes this many rows from the top.
const LOAD_OLDER_WITHIN: f64 = 40.0;

#[component]
pub fn LogList(
    log: LogView,
    loader: Loader,
    /// The search, to mark in the messages.
    search: Signal<Option<String>>,
) -> impl IntoView {
    let top = RwSignal::new(0.0_f64);
    let height = RwSignal::new(800.0_f64);
    let range = Memo::new(move |_| {
        let count = log.lines.with(Vec::len);
        let first = (top.get() / ROW_HEIGHT) as usize;
        let shown = (height.get() / ROW_HEIGHT).ceil() as usize + 1;
        (
            first.saturating_sub(OVERSCAN).min(count),
            (first + shown + OVERSCAN).min(count),
        )
    });
    let rows = move || {
        let (start, end) = range.get();
        log.lines.with(|lines| {
            lines[start..end]
                .iter()
                .enumerate()
                .map(|(k, line)| (start + k, line.clone()))
                .collect::<Vec<_>>()
        })
    };

    let on_scroll = move |_| {
        let Some(el) = log.viewport.get_untracked() else {
            return;
        };
        let now = el.scroll_top() as f64;
        top.set(now);
        height.set(el.client_height() as f64);
        let at_end =
            now + el.client_height() as f64 >= el.scroll_height() as f64 - ROW_HEIGHT / 2.0;
        if at_end {
            if !log.following.get_untracked() {
                log.following.set(true);
            }
            log.unseen.set(0);
        } else if now < log.last_top.get_value() {
            // The reader went up: the tail no longer moves the view.
            log.following.set(false);
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
    let total = move || format!("{}px", log.lines.with(Vec::len) as f64 * ROW_HEIGHT);

    view! {
        <div class="logs-list-wrap">
            <div
                class="panel logs-list mono"
                node_ref=log.viewport
                on:scroll=on_scroll
                tabindex="0"
                role="log"
                aria-label="Log lines, oldest first"
                data-testid="logs-list"
                data-following=move || log.following.get().to_string()
            >
                <div class="logs-spacer" style:height=total>
                    <For each=rows key=|(index, line)| (*index, line.id) let:((index, line))>
                        <LogRow index line log search />
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

#[component]
fn LogRow(
    index: usize,
    line: LogRecord,
    log: LogView,
    search: Signal<Option<String>>,
) -> impl IntoView {
    let id = line.id;
    let level = line.level.as_str();
    let fields = line
        .context
        .iter()
        .map(|(key, value)| format!("{key}={}", format::plain(value)))
        .collect::<Vec<_>>()
        .join(" ");
    let message = line.message.clone();
    let marked = move || {
        let text = message.clone();
        let marks = search.with(|q| {
            q.as_deref()
                .map(|q| highlight::matches(&text, q))
                .unwrap_or_default()
        });
        let mut pieces = Vec::new();
        let mut at = 0;
        for mark in marks {
            if mark.start > at {
                pieces.push(Either::Left(text[at..mark.start].to_owned()));
            }
            pieces.push(Either::Right(
                view! { <mark>{text[mark.clone()].to_owned()}</mark> },
            ));
            at = mark.end;
        }
        if at < text.len() {
            pieces.push(Either::Left(text[at..].to_owned()));
        }
        pieces
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
            class=format!("logs-row level-{level}")
            class:selected=move || log.selected.get() == Some(id)
            style:top=format!("{}px", index as f64 * ROW_HEIGHT)
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
            <span class="logs-fields" title=fields.clone()>{fields.clone()}</span>
        </div>
    }
}

/// The selected line whole, as its JSON.
#[component]
pub fn LineDetail(log: LogView) -> impl IntoView {
    let line = move || {
        let id = log.selected.get()?;
        log.lines
            .with(|lines| lines.iter().rev().find(|l| l.id == id).cloned())
    };
    view! {
        {move || line().map(|line| {
            let json = serde_json::to_string_pretty(&line).unwrap_or_default();
            view! {
                <section class="panel logs-detail" data-testid="log-detail" aria-label="The selected line">
                    <header>
                        <h2>"Line " {line.id}</h2>
                        <button class="btn small" on:click=move |_| log.selected.set(None)>"Close"</button>
                    </header>
                    <pre class="mono small">{json}</pre>
                </section>
            }
        })}
    }
}
