//! Building blocks shared by the pages.

mod charts;
pub mod format;
mod header;
pub mod highlight;
mod inspector;
mod overlays;
mod runs;
mod timeline;

pub use charts::MetricsPanel;
pub use header::{theme_script, Header};
pub use inspector::{Inspector, SEARCH_ID};
pub use overlays::{
    CollapseToggle, ContextMenu, MenuTarget, Overlays, Panels, QuickSwitcher, RawDialog, PANELS,
};
pub use runs::{RunsGrid, StatusBadge};
pub use timeline::{StepTimeline, StepsTab, LOG_ID};

/// Puts `text` on the clipboard (the browser asks the user where it must).
pub(crate) fn copy_to_clipboard(text: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}
