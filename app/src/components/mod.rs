//! The pages' building blocks, one component (and the state it owns) per file. They import each
//! other by path, in one direction: `panels` and `overlays` (shared state) below the quadrants,
//! the quadrants below the menus, the switcher and the shortcuts that act on them.

pub mod charts;
pub mod context_menu;
pub mod filter_field;
pub mod header;
pub mod inspector;
pub mod overlays;
pub mod panels;
pub mod runs;
pub mod shortcuts;
pub mod switcher;
pub mod timeline;

use leptos::prelude::*;

/// Fetches the WASM chunks of what the page opens on demand: the switcher, the menus, the raw
/// data dialog, the shortcut list and the run log, so the first time one opens it is already in.
/// For after hydration: the first load must not wait for them.
pub fn prefetch_lazy_views() {
    let _ = lazy_preload!(switcher::switcher_list);
    let _ = lazy_preload!(context_menu::menu_view);
    let _ = lazy_preload!(context_menu::raw_view);
    let _ = lazy_preload!(shortcuts::shortcut_list);
    let _ = lazy_preload!(timeline::run_log);
}
