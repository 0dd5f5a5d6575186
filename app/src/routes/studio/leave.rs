//! Leaving the studio with unsaved text asks first: the browser's own prompt when the tab is
//! closed or reloaded (`beforeunload`), and a confirmation when a link inside the app is followed
//! — the router navigates those without unloading anything, so `beforeunload` never fires.

use leptos::prelude::*;

#[cfg(feature = "hydrate")]
const QUESTION: &str = "This pipeline has unsaved changes. Leave the page anyway? \
(The text stays in this browser and comes back when you open the pipeline again.)";

/// Asks before leaving while `dirty` holds, until the calling component is cleaned up.
pub fn ask_before_leaving(dirty: Signal<bool>) {
    let unload = window_event_listener(leptos::ev::beforeunload, move |ev| {
        if dirty.get_untracked() {
            ev.prevent_default();
        }
    });
    let remove_links = follow_links_after_asking(dirty);
    on_cleanup(move || {
        unload.remove();
        remove_links();
    });
}

/// Adds a capture-phase click listener, which runs before the router's (the router skips a click
/// whose default is prevented), so declining keeps the page and its text. Returns what removes it.
#[cfg(feature = "hydrate")]
fn follow_links_after_asking(dirty: Signal<bool>) -> impl FnOnce() + Send + Sync + 'static {
    use leptos::{
        wasm_bindgen::{closure::Closure, JsCast},
        web_sys::{Element, MouseEvent},
    };

    let on_click = Closure::<dyn Fn(MouseEvent)>::new(move |ev: MouseEvent| {
        if !dirty.get_untracked() || ev.default_prevented() || ev.button() != 0 {
            return;
        }
        // A modified click opens a new tab: this page stays.
        if ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key() {
            return;
        }
        let Some(link) = ev
            .target()
            .and_then(|t| t.dyn_into::<Element>().ok())
            .and_then(|el| el.closest("a[href]").ok().flatten())
        else {
            return;
        };
        let href = link.get_attribute("href").unwrap_or_default();
        let new_tab = link
            .get_attribute("target")
            .is_some_and(|t| !t.is_empty() && t != "_self");
        if href.starts_with('#') || new_tab || link.has_attribute("download") {
            return;
        }
        if !window().confirm_with_message(QUESTION).unwrap_or(true) {
            ev.prevent_default();
            ev.stop_propagation();
        }
    });
    let _ = window().add_event_listener_with_callback_and_bool(
        "click",
        on_click.as_ref().unchecked_ref(),
        true,
    );
    // The closure belongs to the browser's one thread; a local arena value is Send + Sync.
    let on_click = StoredValue::new_local(on_click);
    move || {
        on_click.with_value(|f| {
            let _ = window().remove_event_listener_with_callback_and_bool(
                "click",
                f.as_ref().unchecked_ref(),
                true,
            );
        });
        on_click.dispose();
    }
}

#[cfg(not(feature = "hydrate"))]
fn follow_links_after_asking(_: Signal<bool>) -> impl FnOnce() + Send + Sync + 'static {
    || {}
}
