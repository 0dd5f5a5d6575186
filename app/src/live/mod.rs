//! Live state in the browser: the store the views read, and (when hydrated) the event stream
//! that keeps it current.

mod store;
#[cfg(feature = "hydrate")]
mod stream;

pub use store::*;

use leptos::prelude::*;

use crate::models::Snapshot;

/// Creates the page's store from `snapshot` and provides it to the views; in the browser it
/// also connects the event stream, resuming right after the snapshot.
pub fn provide_live(snapshot: &Snapshot) -> LiveStore {
    let store = LiveStore::new(snapshot);
    provide_context(store.clone());
    #[cfg(feature = "hydrate")]
    {
        let store = store.clone();
        Effect::new(move |started: Option<()>| {
            if started.is_none() {
                stream::start(store.clone());
            }
        });
    }
    store
}

/// The store of the current page.
pub fn use_live() -> Option<LiveStore> {
    use_context::<LiveStore>()
}
