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

/// Puts `text` on the clipboard (the browser asks the user where it must). False when the page
/// has no clipboard: browsers offer it only on https and localhost.
pub(crate) fn copy_to_clipboard(text: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        let Some(navigator) = web_sys::window().map(|w| w.navigator()) else {
            return false;
        };
        // Checked first: calling into a missing clipboard would throw.
        let has_clipboard = web_sys::js_sys::Reflect::get(&navigator, &"clipboard".into())
            .is_ok_and(|c| !c.is_undefined());
        if has_clipboard {
            let _ = navigator.clipboard().write_text(text);
        }
        has_clipboard
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = text;
        false
    }
}
