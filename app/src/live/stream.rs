//! The browser's one live stream per page: applies every event to the [`LiveStore`], resumes
//! with Last-Event-ID after a drop (the browser does that itself; after a refused reconnect we
//! open a new stream from the last applied `seq`), reloads the snapshot on `bus:resync`, and
//! says honestly when the stream is down.
//!
//! A [`LiveStream`] owns everything it starts: the `EventSource` and its listeners, the
//! watchdog interval and a pending retry. The page closes it when it goes away; its callbacks
//! hold it weakly, so a timer or a snapshot load that finishes afterwards opens nothing. A
//! stream left open would hold one of the browser's six connections to the server, and after a
//! few in-app navigations the tab could load nothing more.

use std::{
    cell::{Cell, RefCell},
    rc::{Rc, Weak},
    time::Duration,
};

use chrono::Utc;
use leptos::{prelude::*, task::spawn_local};
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{EventSource, MessageEvent};

use super::store::{Connection, LiveStore, RunDetail};
use crate::{
    functions::{get_execution, get_snapshot},
    models::{events::EVENT_NAMES, Event},
};

/// No heartbeat (sent every 10 s) for this long means the stream is gone, even if the socket
/// has not said so.
const SILENCE_IS_OFFLINE: chrono::TimeDelta = chrono::TimeDelta::seconds(25);
/// How often the watchdog looks at the last heartbeat.
const WATCHDOG_EVERY: Duration = Duration::from_secs(2);
/// After the browser gives up on a stream, try a new one this often.
const RETRY_EVERY: Duration = Duration::from_secs(3);

/// Events held for the next animation frame beyond this many are applied at once: a page that
/// gets no frames (a background tab) must not hold an ever-growing queue.
const MOST_HELD: usize = 4096;

/// The page's live stream. Closed when dropped.
pub struct LiveStream(Rc<Inner>);

struct Inner {
    store: LiveStore,
    /// Set once the page is gone: nothing may open after it.
    closed: Cell<bool>,
    source: RefCell<Option<Source>>,
    watchdog: Cell<Option<IntervalHandle>>,
    retry: Cell<Option<TimeoutHandle>>,
    /// Events received since the last frame, applied together in the next one: a burst (a
    /// batch starting 200 runs) costs the page one update per frame, not one per event.
    held: RefCell<Vec<Event>>,
    frame: Cell<Option<AnimationFrameRequestHandle>>,
}

impl LiveStream {
    /// Connects, resuming after the store's last applied event.
    pub fn open(store: LiveStore) -> Self {
        let inner = Rc::new(Inner {
            store,
            closed: Cell::new(false),
            source: RefCell::new(None),
            watchdog: Cell::new(None),
            retry: Cell::new(None),
            held: RefCell::new(Vec::new()),
            frame: Cell::new(None),
        });
        inner.connect();
        // A half-open connection never fires `error`, so silence counts too.
        let weak = Rc::downgrade(&inner);
        let watchdog = set_interval_with_handle(
            move || {
                if let Some(inner) = weak.upgrade() {
                    inner.check_silence();
                }
            },
            WATCHDOG_EVERY,
        );
        inner.watchdog.set(watchdog.ok());
        Self(inner)
    }

    /// Closes the `EventSource`, clears the timers and drops the listeners; a snapshot load
    /// still under way is ignored when it arrives.
    pub fn close(&self) {
        self.0.close();
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Inner {
    fn close(&self) {
        self.closed.set(true);
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.clear();
        }
        if let Some(retry) = self.retry.take() {
            retry.clear();
        }
        if let Some(frame) = self.frame.take() {
            frame.cancel();
        }
        self.held.borrow_mut().clear();
        // Taken out before it is dropped: dropping closes it, and nothing may borrow `source`
        // meanwhile.
        let source = self.source.borrow_mut().take();
        drop(source);
    }

    /// Opens a new `EventSource` from the last applied event, closing the current one first:
    /// a page never holds two.
    fn connect(self: &Rc<Self>) {
        if self.closed.get() {
            return;
        }
        if let Some(retry) = self.retry.take() {
            retry.clear();
        }
        let old = self.source.borrow_mut().take();
        drop(old);
        match Source::open(self) {
            Some(source) => *self.source.borrow_mut() = Some(source),
            None => {
                self.store.connection.set(Connection::Offline);
                self.retry_later();
            }
        }
    }

    /// Connects again after [`RETRY_EVERY`], unless the page has gone by then. Never from the
    /// source's own callback: replacing the source drops the listener that is running.
    fn retry_later(self: &Rc<Self>) {
        if self.closed.get() {
            return;
        }
        let weak = Rc::downgrade(self);
        let handle = set_timeout_with_handle(
            move || {
                if let Some(inner) = weak.upgrade() {
                    inner.retry.set(None);
                    inner.connect();
                }
            },
            RETRY_EVERY,
        );
        if let Some(pending) = self.retry.replace(handle.ok()) {
            pending.clear();
        }
    }

    fn check_silence(&self) {
        let store = &self.store;
        let quiet_for = store
            .last_heartbeat
            .get_untracked()
            .map(|at| Utc::now() - at);
        if store.connection.get_untracked() == Connection::Live
            && quiet_for.is_some_and(|q| q > SILENCE_IS_OFFLINE)
        {
            store.connection.set(Connection::Offline);
        }
    }

    fn receive(self: &Rc<Self>, message: &MessageEvent) {
        let Some(data) = message.data().as_string() else {
            return;
        };
        let Ok(event) = serde_json::from_str::<Event>(&data) else {
            return;
        };
        let store = &self.store;
        store.last_heartbeat.set(Some(Utc::now()));
        if store.connection.get_untracked() != Connection::Live {
            store.connection.set(Connection::Live);
        }
        let held = {
            let mut held = self.held.borrow_mut();
            held.push(event);
            held.len()
        };
        let hidden = document().hidden();
        if hidden || held >= MOST_HELD {
            self.apply_held();
        } else if held == 1 {
            let weak = Rc::downgrade(self);
            let frame = request_animation_frame_with_handle(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.frame.set(None);
                    inner.apply_held();
                }
            });
            match frame {
                Ok(frame) => self.frame.set(Some(frame)),
                Err(_) => self.apply_held(),
            }
        }
    }

    /// Applies the events held for this frame, in order. Their effects on the page run once,
    /// after all of them (Leptos schedules effects, it does not run them per signal write).
    fn apply_held(self: &Rc<Self>) {
        if let Some(frame) = self.frame.take() {
            frame.cancel();
        }
        let events = std::mem::take(&mut *self.held.borrow_mut());
        let mut resync = false;
        for event in events {
            // As one at a time: every event is applied, and a gap asks for the snapshot.
            resync |= !self.store.apply(event);
        }
        if resync {
            self.resync();
        }
    }

    fn opened(self: &Rc<Self>) {
        self.store.connection.set(Connection::Live);
        self.store.last_heartbeat.set(Some(Utc::now()));
    }

    fn failed(self: &Rc<Self>) {
        let given_up = self
            .source
            .borrow()
            .as_ref()
            .is_some_and(|s| s.source.ready_state() == EventSource::CLOSED);
        if given_up {
            // The browser will not retry (e.g. the server answered with an error).
            self.store.connection.set(Connection::Offline);
            self.retry_later();
            spawn_local(reload_if_signed_out());
        } else {
            self.store.connection.set(Connection::Reconnecting);
        }
    }

    /// The stream could not give back what this page missed: start again from a fresh
    /// snapshot, while the stream goes on.
    fn resync(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        spawn_local(async move {
            let Ok(snapshot) = get_snapshot().await else {
                return;
            };
            let Some(store) = open_store(&weak) else {
                return;
            };
            store.reset(&snapshot);
            let Some(id) = store.detail.get_untracked().map(|d| d.id) else {
                return;
            };
            if let Ok(detail) = get_execution(id).await {
                if let Some(store) = open_store(&weak) {
                    store.show_detail(RunDetail::new(&detail));
                }
            }
        });
    }
}

/// An `EventSource` does not say why it was refused. When the reason is a session that ran out
/// (a 401), retrying would show "offline" forever: reloading the page instead takes the user to
/// the sign-in page, which brings them back here.
async fn reload_if_signed_out() {
    // The browser's fetch as it is: a request builder would add code to the first load.
    let answer =
        wasm_bindgen_futures::JsFuture::from(window().fetch_with_str("/api/bus/stats")).await;
    // A fetch that resolves resolves to a Response: no need to check its type.
    let signed_out =
        answer.is_ok_and(|answer| answer.unchecked_into::<web_sys::Response>().status() == 401);
    if signed_out {
        let _ = window().location().reload();
    }
}

/// The store of a stream that is still open; checked again after each wait, as the page may
/// have gone meanwhile.
fn open_store(stream: &Weak<Inner>) -> Option<LiveStore> {
    let inner = stream.upgrade()?;
    (!inner.closed.get()).then(|| inner.store.clone())
}

/// One `EventSource` and the listeners on it. Dropping it closes the source and detaches them,
/// so the browser never calls a listener that is gone.
struct Source {
    source: EventSource,
    on_event: Closure<dyn FnMut(MessageEvent)>,
    // Held only to keep the handlers alive as long as the source.
    _on_open: Closure<dyn FnMut()>,
    _on_error: Closure<dyn FnMut()>,
}

impl Source {
    fn open(stream: &Rc<Inner>) -> Option<Self> {
        let url = match stream.store.seq.get_untracked() {
            Some(seq) => format!("/api/events?last_event_id={seq}"),
            None => "/api/events".to_owned(),
        };
        let source = EventSource::new(&url).ok()?;
        let on_event = {
            let stream = Rc::downgrade(stream);
            Closure::<dyn FnMut(MessageEvent)>::new(move |message: MessageEvent| {
                if let Some(stream) = stream.upgrade() {
                    stream.receive(&message);
                }
            })
        };
        for name in EVENT_NAMES {
            let _ =
                source.add_event_listener_with_callback(name, on_event.as_ref().unchecked_ref());
        }
        let on_open = handler(stream, Inner::opened);
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        let on_error = handler(stream, Inner::failed);
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Some(Self {
            source,
            on_event,
            _on_open: on_open,
            _on_error: on_error,
        })
    }
}

/// A listener calling `f` on the stream while it exists.
fn handler(stream: &Rc<Inner>, f: fn(&Rc<Inner>)) -> Closure<dyn FnMut()> {
    let stream = Rc::downgrade(stream);
    Closure::new(move || {
        if let Some(stream) = stream.upgrade() {
            f(&stream);
        }
    })
}

impl Drop for Source {
    fn drop(&mut self) {
        self.source.close();
        for name in EVENT_NAMES {
            let _ = self
                .source
                .remove_event_listener_with_callback(name, self.on_event.as_ref().unchecked_ref());
        }
        self.source.set_onopen(None);
        self.source.set_onerror(None);
    }
}
