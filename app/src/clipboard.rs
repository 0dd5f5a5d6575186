//! The browser's clipboard, for the copy buttons and menu items.

/// Puts `text` on the clipboard (the browser asks the user where it must). False when the page
/// has no clipboard: browsers offer it only on https and localhost.
pub fn copy_to_clipboard(text: &str) -> bool {
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
