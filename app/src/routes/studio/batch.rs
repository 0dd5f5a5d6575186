//! Batch runs from the studio: paste or upload CSV or JSON lines of inputs, see the rows as the
//! engine read and checked them (and the bad ones by line), start one run per good row of the
//! saved version, `concurrency` at a time, and follow the batch's progress until it ends or is
//! cancelled.

use std::{
    cell::Cell,
    rc::Rc,
    sync::{Arc, Mutex},
    time::Duration,
};

use leptos::{either::Either, prelude::*, task::spawn_local};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::run::Runnable;
use crate::{
    functions::{batch_progress, cancel_batch, parse_batch, start_batch},
    models::{BatchFormat, BatchProgress, BatchRows, RunStatus},
};

/// Rows shown in the preview; the count says how many there are in all.
const PREVIEW_ROWS: usize = 20;
/// The engine allows more; more than this at once only queues behind the providers' limits.
const MAX_CONCURRENCY: u32 = 64;
const DEFAULT_CONCURRENCY: u32 = 4;
/// Typing pauses this long before the rows are read again.
const PARSE_DELAY: Duration = Duration::from_millis(300);
const POLL_EVERY: Duration = Duration::from_secs(1);

/// A batch started from this panel.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Started {
    id: Uuid,
    /// Runs asked for: the ones not stored yet are still queued.
    total: u32,
}

/// What the panel shows, owned by the page: switching to another tab and back keeps the pasted
/// rows and the batch being followed.
#[derive(Clone, Copy)]
pub struct BatchState {
    input: RwSignal<String>,
    parsed: RwSignal<Option<Result<BatchRows, String>>>,
    concurrency: RwSignal<u32>,
    batch: RwSignal<Option<Started>>,
    progress: RwSignal<BatchProgress>,
    /// Following ended: every run stored has finished and none is queued (or the batch was
    /// cancelled, after which queued runs never start).
    ended: RwSignal<bool>,
    cancelled: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    note: RwSignal<Option<String>>,
}

impl BatchState {
    pub fn new() -> Self {
        Self {
            input: RwSignal::new(String::new()),
            parsed: RwSignal::new(None),
            concurrency: RwSignal::new(DEFAULT_CONCURRENCY),
            batch: RwSignal::new(None),
            progress: RwSignal::new(BatchProgress::default()),
            ended: RwSignal::new(false),
            cancelled: RwSignal::new(false),
            error: RwSignal::new(None),
            note: RwSignal::new(None),
        }
    }
}

impl Default for BatchState {
    fn default() -> Self {
        Self::new()
    }
}

#[component]
pub fn BatchPanel(
    state: BatchState,
    /// The text being edited: rows are checked against the inputs it declares.
    text: Signal<String>,
    /// The saved version a batch runs; None while the text is unsaved, a draft or has problems.
    runnable: Signal<Option<Runnable>>,
    blocked: Signal<String>,
) -> impl IntoView {
    let BatchState {
        input,
        parsed,
        concurrency,
        batch,
        progress,
        ended,
        cancelled,
        error,
        note,
    } = state;
    let format = Memo::new(move |_| input.with(|t| BatchFormat::detect(t)));
    let starting = RwSignal::new(false);

    // Read the rows again a moment after the pasted text or the pipeline's text changes; an
    // answer to an older text is dropped.
    // Plain cells, not arena values: an answer may arrive after the panel is gone.
    let asked = Rc::new(Cell::new(0_u64));
    // The cleanup must be Send, so the pending timeout sits behind a lock.
    let pending = Arc::new(Mutex::new(None::<TimeoutHandle>));
    Effect::new({
        let pending = Arc::clone(&pending);
        move |_| {
            let rows = input.get();
            let yaml = text.get();
            let format = format.get();
            if let Some(handle) = pending.lock().ok().and_then(|mut p| p.take()) {
                handle.clear();
            }
            asked.set(asked.get() + 1);
            let ask = asked.get();
            if rows.trim().is_empty() {
                parsed.set(None);
                return;
            }
            let asked = Rc::clone(&asked);
            let read = move || {
                spawn_local(async move {
                    let answer = parse_batch(yaml, rows, format)
                        .await
                        .map_err(|e| e.to_string());
                    if asked.get() == ask {
                        parsed.set(Some(answer));
                    }
                });
            };
            if let Ok(mut pending) = pending.lock() {
                *pending = set_timeout_with_handle(read, PARSE_DELAY).ok();
            }
        }
    });
    on_cleanup(move || {
        if let Some(handle) = pending.lock().ok().and_then(|mut p| p.take()) {
            handle.clear();
        }
    });

    // The running batch's counts, every second until it has ended.
    Effect::new(move |_| {
        let Some(Started { id, total }) = batch.get() else {
            return;
        };
        // Back on the tab after it ended: the last counts stand.
        if ended.get_untracked() {
            return;
        }
        let in_flight = Rc::new(Cell::new(false));
        let interval = Rc::new(Cell::new(None::<IntervalHandle>));
        let poll = {
            let interval = Rc::clone(&interval);
            move || {
                if in_flight.get() || ended.get_untracked() {
                    return;
                }
                in_flight.set(true);
                let in_flight = Rc::clone(&in_flight);
                let interval = Rc::clone(&interval);
                spawn_local(async move {
                    match batch_progress(id).await {
                        Ok(counts) => {
                            let over = counts.active() == 0
                                && (counts.stored() >= total || cancelled.get_untracked());
                            progress.set(counts);
                            if over {
                                ended.set(true);
                                if let Some(handle) = interval.take() {
                                    handle.clear();
                                }
                            }
                        }
                        Err(e) => error.set(Some(format!("The progress could not be read: {e}"))),
                    }
                    in_flight.set(false);
                });
            }
        };
        poll();
        if let Ok(handle) = set_interval_with_handle(poll, POLL_EVERY) {
            interval.set(Some(handle));
            on_cleanup(move || handle.clear());
        }
    });

    let rows = Memo::new(move |_| {
        parsed.with(|p| match p {
            Some(Ok(read)) => read.rows.clone(),
            _ => Vec::new(),
        })
    });
    let running = move || batch.get().is_some() && !ended.get();
    let start = move |_| {
        let Some(target) = runnable.get_untracked() else {
            return;
        };
        let sets = rows.get_untracked();
        if sets.is_empty() {
            return;
        }
        let total = u32::try_from(sets.len()).unwrap_or(u32::MAX);
        let concurrency = concurrency.get_untracked();
        error.set(None);
        note.set(None);
        starting.set(true);
        spawn_local(async move {
            match start_batch(target.name, target.version, sets, concurrency).await {
                Ok(id) => {
                    progress.set(BatchProgress::default());
                    ended.set(false);
                    cancelled.set(false);
                    batch.set(Some(Started { id, total }));
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            starting.set(false);
        });
    };
    let cancel = move |_| {
        let Some(Started { id, .. }) = batch.get_untracked() else {
            return;
        };
        cancelled.set(true);
        spawn_local(async move {
            match cancel_batch(id).await {
                Ok(n) => note.set(Some(format!(
                    "Cancelled {n} running {}; the queued ones will not start.",
                    if n == 1 { "run" } else { "runs" }
                ))),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };

    view! {
        <section class="studio-batch" aria-labelledby="batch-title" data-testid="batch-panel">
            <h2 id="batch-title" class="label">"Batch"</h2>
            <label class="field">
                <span class="field-name">
                    "Inputs, one run per row: CSV with a header of input names, or one JSON object per line"
                </span>
                <textarea
                    rows="8"
                    spellcheck="false"
                    data-testid="batch-text"
                    placeholder="topic,tone\nevent sourcing,dry\n\nor\n\n{\"topic\": \"event sourcing\"}"
                    prop:value=move || input.get()
                    on:input=move |ev| input.set(event_target_value(&ev))
                ></textarea>
            </label>
            <div class="run-actions">
                <label class="btn small batch-file">
                    "Upload a file…"
                    <input
                        type="file"
                        accept=".csv,.jsonl,.ndjson,.txt,text/csv,application/jsonl"
                        data-testid="batch-file"
                        on:change=move |ev| read_file(ev, input, error)
                    />
                </label>
                <span class="muted small" data-testid="batch-format">
                    {move || (!input.with(|t| t.trim().is_empty())).then(|| format!("Read as {}", format.get().label()))}
                </span>
            </div>
            {move || parsed.get().map(|answer| match answer {
                Ok(read) => Either::Left(view! { <RowsPreview read /> }),
                Err(e) => Either::Right(view! { <div class="run-error" role="alert">{e}</div> }),
            })}
            <div class="run-actions">
                <label class="field batch-concurrency">
                    <span class="field-name">"Concurrency"</span>
                    <input
                        type="number"
                        min="1"
                        max=MAX_CONCURRENCY.to_string()
                        data-testid="batch-concurrency"
                        prop:value=move || concurrency.get().to_string()
                        on:input=move |ev| {
                            // A field being cleared to type anew keeps the last number.
                            if let Ok(n) = event_target_value(&ev).trim().parse::<u32>() {
                                concurrency.set(n.clamp(1, MAX_CONCURRENCY));
                            }
                        }
                    />
                </label>
                <button
                    class="btn primary"
                    type="button"
                    data-testid="batch-start"
                    disabled=move || runnable.get().is_none() || rows.with(Vec::is_empty) || starting.get() || running()
                    on:click=start
                >
                    {move || match (runnable.get(), rows.with(Vec::len)) {
                        (Some(r), n) if n > 0 => format!("Start {n} {} of v{}", if n == 1 { "run" } else { "runs" }, r.version),
                        _ => "Start".to_owned(),
                    }}
                </button>
                <span class="muted small">{move || runnable.get().is_none().then(|| blocked.get())}</span>
            </div>
            {move || error.get().map(|e| view! { <div class="run-error" role="alert">{e}</div> })}
            {move || batch.get().map(|started| view! {
                <BatchProgressView started progress=progress.into() ended=ended.into() cancelled=cancelled.into() on_cancel=cancel />
            })}
            {move || note.get().map(|n| view! { <p class="muted small" data-testid="batch-note">{n}</p> })}
        </section>
    }
}

/// The first rows as a table (columns in the order the rows name them), the count of all, and
/// the rows that will not run with their line.
#[component]
fn RowsPreview(read: BatchRows) -> impl IntoView {
    let total = read.rows.len();
    let shown = &read.rows[..total.min(PREVIEW_ROWS)];
    let mut columns: Vec<String> = Vec::new();
    for name in shown.iter().flat_map(Map::keys) {
        if !columns.contains(name) {
            columns.push(name.clone());
        }
    }
    let cell = |value: Option<&Value>| match value {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let head = columns
        .iter()
        .map(|c| view! { <th class="mono">{c.clone()}</th> })
        .collect_view();
    let body = shown
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let cells = columns
                .iter()
                .map(|c| view! { <td class="batch-cell">{cell(row.get(c))}</td> })
                .collect_view();
            view! {
                <tr data-testid="batch-row">
                    <td class="num muted">{index + 1}</td>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    let count = match total {
        0 => "No row will run.".to_owned(),
        n if n > PREVIEW_ROWS => format!("{n} rows will run; the first {PREVIEW_ROWS}:"),
        1 => "1 row will run:".to_owned(),
        n => format!("{n} rows will run:"),
    };
    let errors = read.errors;
    view! {
        <p class="small" data-testid="batch-count" data-rows=total.to_string()>{count}</p>
        {(total > 0).then(|| view! {
            <div class="table-wrap batch-rows">
                <table class="pipelines">
                    <thead><tr><th class="num">"#"</th>{head}</tr></thead>
                    <tbody>{body}</tbody>
                </table>
            </div>
        })}
        {(!errors.is_empty()).then(|| view! {
            <p class="small">
                {format!("{} {} will not run:", errors.len(), if errors.len() == 1 { "row" } else { "rows" })}
            </p>
            <ul class="batch-errors">
                {errors.into_iter().map(|e| view! {
                    <li class="run-error" data-testid="batch-row-error" data-line=e.line.to_string()>
                        <span class="mono">{format!("line {}: ", e.line)}</span>
                        {e.message}
                    </li>
                }).collect_view()}
            </ul>
        })}
    }
}

/// A batch's runs by status, a bar of the finished share, and Cancel while it runs.
#[component]
fn BatchProgressView(
    started: Started,
    progress: Signal<BatchProgress>,
    ended: Signal<bool>,
    cancelled: Signal<bool>,
    on_cancel: impl Fn(leptos::ev::MouseEvent) + 'static,
) -> impl IntoView {
    let total = started.total;
    let finished = move || progress.with(|p| p.stored() - p.active());
    let share = move || {
        let done = f64::from(finished());
        format!("width: {:.1}%", 100.0 * done / f64::from(total.max(1)))
    };
    let state = move || {
        if !ended.get() {
            "running"
        } else if cancelled.get() {
            "cancelled"
        } else {
            "done"
        }
    };
    let counts = move || {
        let p = progress.get();
        let queued = total.saturating_sub(p.stored());
        let mut parts: Vec<(String, String, u32)> = RunStatus::ALL
            .into_iter()
            .map(|s| (s.as_str().to_owned(), s.label().to_owned(), p.count(s)))
            .filter(|(_, _, n)| *n > 0)
            .collect();
        if queued > 0 {
            let label = if cancelled.get() {
                "not started"
            } else {
                "queued"
            };
            parts.push(("queued".to_owned(), label.to_owned(), queued));
        }
        parts
            .into_iter()
            .map(|(status, label, n)| {
                view! {
                    <li data-testid="batch-count-status" data-status=status>
                        <span class="num">{n}</span>" "{label}
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <div
            class="batch-progress"
            data-testid="batch-progress"
            data-batch-id=started.id.to_string()
            data-state=state
            data-completed=move || progress.with(|p| p.count(RunStatus::Completed)).to_string()
            data-total=total.to_string()
        >
            <div class="run-actions">
                <span class="small">{move || format!("{} of {total} finished", finished())}</span>
                <button
                    class="btn small danger"
                    type="button"
                    data-testid="batch-cancel"
                    disabled=move || ended.get() || cancelled.get()
                    on:click=on_cancel
                >
                    "Cancel"
                </button>
            </div>
            <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax=total.to_string() aria-valuenow=move || finished().to_string()>
                <div class="progress-bar" style=share></div>
            </div>
            <ul class="batch-counts">{counts}</ul>
        </div>
    }
}

/// Puts the text of the file picked in `ev`'s input into `input`.
#[cfg(feature = "hydrate")]
fn read_file(ev: leptos::ev::Event, input: RwSignal<String>, error: RwSignal<Option<String>>) {
    use leptos::{
        wasm_bindgen::{JsCast, JsValue},
        web_sys::js_sys::{Function, Promise, Reflect},
    };
    // By name through Reflect: the file types are not among the web-sys features this crate
    // enables, and `Blob.text()` needs no FileReader callbacks.
    let text = || -> Option<Promise> {
        let target: JsValue = ev.target()?.into();
        let files = Reflect::get(&target, &"files".into()).ok()?;
        let file = Reflect::get(&files, &0.into()).ok()?;
        if file.is_undefined() {
            return None;
        }
        let read: Function = Reflect::get(&file, &"text".into()).ok()?.dyn_into().ok()?;
        read.call0(&file).ok()?.dyn_into().ok()
    };
    let Some(promise) = text() else {
        return;
    };
    spawn_local(async move {
        match wasm_bindgen_futures::JsFuture::from(promise).await {
            Ok(text) => input.set(text.as_string().unwrap_or_default()),
            Err(_) => error.set(Some(
                "The file could not be read as text: pick a CSV or JSON-lines file.".to_owned(),
            )),
        }
    });
}

#[cfg(not(feature = "hydrate"))]
fn read_file(_: leptos::ev::Event, _: RwSignal<String>, _: RwSignal<Option<String>>) {}
