//! The browser's one EventSource per page: applies every event to the [`LiveStore`], resumes
//! with Last-Event-ID after a drop (the browser does that itself; after a refused reconnect we
//! open a new stream from the last applied `seq`), reloads the snapshot on `bus:resync`, and
//! says honestly when the stream is down.

use std::time::Duration;

use chrono::Utc;
use leptos::{prelude::*, task::spawn_local};
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{EventSource, MessageEvent};

use super::{Connection, LiveStore, RunDetail};
use crate::{
    functions::{get_execution, get_snapshot},
    models::{events::EVENT_NAMES, Event},
};

/// No heartbeat (sent every 10 s) for this long means the stream is gone, even if the socket
/// has not said so.
const SILENCE_IS_OFFLINE: chrono::TimeDelta = chrono::TimeDelta::seconds(25);
/// After the browser gives up on a stream, try a new one this often.
const RETRY_EVERY: Duration = Duration::from_secs(3);

pub fn start(store: LiveStore) {
    open(store.clone());
    // Watchdog: a half-open connection never fires `error`, so silence counts too.
    let _ = set_interval_with_handle(
        move || {
            let quiet_for = store
                .last_heartbeat
                .get_untracked()
                .map(|at| Utc::now() - at);
            if store.connection.get_untracked() == Connection::Live
                && quiet_for.is_some_and(|q| q > SILENCE_IS_OFFLINE)
            {
                store.connection.set(Connection::Offline);
            }
        },
        Duration::from_secs(2),
    );
}

fn open(store: LiveStore) {
    let url = match store.seq.get_untracked() {
        Some(seq) => format!("/api/events?last_event_id={seq}"),
        None => "/api/events".to_owned(),
    };
    let Ok(source) = EventSource::new(&url) else {
        store.connection.set(Connection::Offline);
        retry_later(store);
        return;
    };

    let on_event = {
        let store = store.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |message: MessageEvent| {
            let Some(data) = message.data().as_string() else {
                return;
            };
            let Ok(event) = serde_json::from_str::<Event>(&data) else {
                return;
            };
            store.last_heartbeat.set(Some(Utc::now()));
            if store.connection.get_untracked() != Connection::Live {
                store.connection.set(Connection::Live);
            }
            if !store.apply(event) {
                resync(store.clone());
            }
        })
    };
    for name in EVENT_NAMES {
        let _ = source.add_event_listener_with_callback(name, on_event.as_ref().unchecked_ref());
    }
    on_event.forget();

    let on_open = {
        let store = store.clone();
        Closure::<dyn FnMut()>::new(move || {
            store.connection.set(Connection::Live);
            store.last_heartbeat.set(Some(Utc::now()));
        })
    };
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    on_open.forget();

    let on_error = {
        let store = store.clone();
        let source = source.clone();
        Closure::<dyn FnMut()>::new(move || {
            if source.ready_state() == EventSource::CLOSED {
                // The browser will not retry (e.g. the server answered with an error).
                store.connection.set(Connection::Offline);
                retry_later(store.clone());
            } else {
                store.connection.set(Connection::Reconnecting);
            }
        })
    };
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
}

fn retry_later(store: LiveStore) {
    set_timeout(move || open(store), RETRY_EVERY);
}

/// The stream could not give back what this page missed: start again from a fresh snapshot.
fn resync(store: LiveStore) {
    spawn_local(async move {
        if let Ok(snapshot) = get_snapshot().await {
            store.reset(&snapshot);
            let shown = store.detail.get_untracked().map(|d| d.id);
            if let Some(id) = shown {
                if let Ok(detail) = get_execution(id).await {
                    store.show_detail(RunDetail::new(&detail));
                }
            }
        }
    });
}
