//! Where the page's lines come from: `GET /api/logs` for the newest page of a filter, the older
//! pages as the list is scrolled up, and the tail: the lines stored since the last read
//! (`since`, in the order they were stored, so a line stored late with an earlier time is not
//! passed over). The event stream only says *when* to read the tail: a `log:entry` (or a
//! heartbeat, or the stream opening again) makes the page ask for what was stored since, so
//! the server applies the filter (search included) and each line comes once, whatever was
//! missed while the stream was down.

use std::time::Duration;

use leptos::{prelude::*, task::spawn_local};

use super::lines::LogView;
use crate::models::logs::{LogFilter, LogPage, MAX_PAGE_SIZE};

/// After a `log:entry`, the tail is read this much later: the line may still be on its way
/// into the store (it is written within 100 ms), and a burst of lines is read at once.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const TAIL_DELAY: Duration = Duration::from_millis(250);
/// And once more this much later, for a line the store took longer to write (a busy writer):
/// otherwise it would wait for the next event or heartbeat (10 s).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const TAIL_AGAIN: Duration = Duration::from_millis(1500);

/// Loads a filter's lines into a [`LogView`]. A new filter starts a new generation: what a
/// read for an earlier filter brings back is dropped.
#[derive(Clone, Copy)]
pub struct Loader {
    log: LogView,
    filter: StoredValue<Option<LogFilter>>,
    generation: StoredValue<u64>,
    /// A read of the tail is under way; `again`: another was asked for meanwhile.
    tailing: StoredValue<bool>,
    again: StoredValue<bool>,
    /// A read of the tail is due after [`TAIL_DELAY`].
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    due: StoredValue<bool>,
    /// The id of the last line stored when the store was last read: the tail is what was
    /// stored after it.
    since: StoredValue<i64>,
}

impl Loader {
    pub fn new(log: LogView) -> Self {
        Self {
            log,
            filter: StoredValue::new(None),
            generation: StoredValue::new(0),
            tailing: StoredValue::new(false),
            again: StoredValue::new(false),
            due: StoredValue::new(false),
            since: StoredValue::new(0),
        }
    }

    /// Shows `filter`'s newest page (None: a filter that cannot be used, nothing to show).
    pub fn show(&self, filter: Option<LogFilter>) {
        self.generation.update_value(|g| *g += 1);
        self.log.reset();
        self.tailing.set_value(false);
        self.again.set_value(false);
        let Some(filter) = filter.map(|f| LogFilter {
            before: None,
            after: None,
            ..f
        }) else {
            self.filter.set_value(None);
            return;
        };
        self.filter.set_value(Some(filter.clone()));
        let this = *self;
        let generation = self.generation.get_value();
        self.log.loading.set(true);
        spawn_local(async move {
            let page = get_page(&filter).await;
            if this.generation.try_get_value() != Some(generation) {
                return;
            }
            this.log.loading.set(false);
            match page {
                Ok(page) => {
                    this.since.set_value(page.tail);
                    this.log.older.set(page.older);
                    this.log.append(page.lines);
                    // Whatever arrived between the read and now.
                    this.read_tail();
                }
                Err(message) => this.log.failed.set(Some(message)),
            }
        });
    }

    /// Reads the page just older than the oldest line held, unless one is being read or the
    /// first line is held.
    pub fn load_older(&self) {
        let log = self.log;
        let Some(before) = log.older.get_untracked() else {
            return;
        };
        let Some(filter) = self.filter.get_value() else {
            return;
        };
        if log.loading_older.get_untracked() || log.loading.get_untracked() {
            return;
        }
        log.loading_older.set(true);
        let this = *self;
        let generation = self.generation.get_value();
        spawn_local(async move {
            let page = get_page(&LogFilter {
                before: Some(before),
                ..filter
            })
            .await;
            if this.generation.try_get_value() != Some(generation) {
                return;
            }
            log.loading_older.set(false);
            match page {
                Ok(page) => {
                    log.older.set(page.older);
                    log.prepend(page.lines);
                }
                Err(message) => log.failed.set(Some(message)),
            }
        });
    }

    /// A line may have been stored: reads the tail a little later (once for a burst).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub fn line_arrived(&self) {
        // The stream and its timers may call after the page is gone.
        if self.due.try_get_value() != Some(false) {
            return;
        }
        self.due.set_value(true);
        let this = *self;
        set_timeout(
            move || {
                if this.due.try_set_value(false).is_none() {
                    this.read_tail();
                    set_timeout(move || this.read_tail(), TAIL_AGAIN - TAIL_DELAY);
                }
            },
            TAIL_DELAY,
        );
    }

    /// Reads every line stored since the last read, a page at a time, and adds them. One
    /// read at a time: a call during one makes it read once more at its end.
    pub fn read_tail(&self) {
        // Also called by the stream and timers, which may outlive the page.
        if self.filter.try_with_value(Option::is_some) != Some(true)
            || self.log.loading.try_get_untracked() != Some(false)
        {
            return;
        }
        if self.tailing.get_value() {
            self.again.set_value(true);
            return;
        }
        self.tailing.set_value(true);
        let this = *self;
        let generation = self.generation.get_value();
        spawn_local(async move {
            loop {
                this.again.set_value(false);
                let Some(filter) = this.filter.get_value() else {
                    break;
                };
                let page = get_page(&LogFilter {
                    since: Some(this.since.get_value()),
                    limit: Some(MAX_PAGE_SIZE),
                    ..filter
                })
                .await;
                if this.generation.try_get_value() != Some(generation) {
                    return;
                }
                match page {
                    Ok(page) => {
                        // More than a page: on from its last line; else from the store's last.
                        let more = page.newer.is_some();
                        this.since.set_value(match page.newer {
                            Some(last) => last.id,
                            None => page.tail,
                        });
                        this.log.append(page.lines);
                        if !more && !this.again.get_value() {
                            break;
                        }
                    }
                    Err(message) => {
                        this.log.failed.set(Some(message));
                        break;
                    }
                }
            }
            this.tailing.set_value(false);
        });
    }
}

/// `GET /api/logs` with `filter`; the error is the server's message (what to fix) or why the
/// server could not be reached.
async fn get_page(filter: &LogFilter) -> Result<LogPage, String> {
    super::super::api::get_json(&format!("/api/logs?{}", filter.to_query())).await
}

/// Reads the tail whenever the event stream says a line may have arrived, until the calling
/// view is cleaned up (the `EventSource` is closed then).
pub fn follow_stream(loader: Loader) {
    #[cfg(feature = "hydrate")]
    {
        let tail = StoredValue::new_local(tail::Tail::open(loader));
        on_cleanup(move || {
            if let Some(tail) = tail.try_update_value(Option::take).flatten() {
                drop(tail);
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = loader;
}

#[cfg(feature = "hydrate")]
mod tail {
    use leptos::wasm_bindgen::{closure::Closure, JsCast};
    use leptos::web_sys::{Event, EventSource};

    use super::Loader;

    /// The page's `EventSource` on `/api/events` and its listeners; closed when dropped.
    pub struct Tail {
        source: EventSource,
        _listener: Closure<dyn Fn(Event)>,
    }

    impl Tail {
        pub fn open(loader: Loader) -> Option<Self> {
            let source = EventSource::new("/api/events").ok()?;
            let listener = Closure::<dyn Fn(Event)>::new(move |event: Event| {
                if event.type_() == "log:entry" {
                    loader.line_arrived();
                } else {
                    // Opened again after a drop, a heartbeat, a resync: whatever was missed.
                    loader.read_tail();
                }
            });
            for name in ["log:entry", "bus:heartbeat", "bus:resync", "open"] {
                let _ = source
                    .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            }
            Some(Self {
                source,
                _listener: listener,
            })
        }
    }

    impl Drop for Tail {
        fn drop(&mut self) {
            self.source.close();
        }
    }
}
