//! Live state in the browser: the store the views read, and (when hydrated) the event stream
//! that keeps it current.

mod store;
#[cfg(feature = "hydrate")]
mod stream;

pub use store::*;

use leptos::prelude::*;

use crate::models::Snapshot;

/// Creates the page's store from `snapshot` and provides it to the views; in the browser it
/// also connects the event stream, resuming right after the snapshot. The stream belongs to the
/// calling view: it is closed when that view is cleaned up (a navigation away, or the page
/// loading another run), so a tab holds one stream however often it navigates.
pub fn provide_live(snapshot: &Snapshot) -> LiveStore {
    let store = LiveStore::new(snapshot);
    provide_context(store.clone());
    #[cfg(feature = "hydrate")]
    {
        let store = store.clone();
        // An effect: it runs once, in the browser only, after the page has hydrated. It reads
        // no signal, so it never runs again; its cleanup runs with the view's.
        Effect::new(move |_| {
            // Local: the stream holds JavaScript objects, which cannot leave this thread.
            let stream = StoredValue::new_local(Some(stream::LiveStream::open(store.clone())));
            on_cleanup(move || {
                if let Some(stream) = stream.try_update_value(Option::take).flatten() {
                    stream.close();
                }
            });
        });
    }
    store
}

/// The store of the current page.
pub fn use_live() -> Option<LiveStore> {
    use_context::<LiveStore>()
}
