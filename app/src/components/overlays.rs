//! What opens over the page, as state shared with the rows that open it: the context menu of a
//! run or a step, the raw-data dialog and the Ctrl+P quick switcher. The views are in
//! `context_menu` and `switcher`.

use leptos::prelude::*;
use uuid::Uuid;

/// The menu's size at most (three items), for keeping it inside the window.
const MENU_WIDTH: i32 = 200;
const MENU_HEIGHT: i32 = 130;

/// What a right-click was on.
#[derive(Debug, Clone, PartialEq)]
pub enum MenuTarget {
    Run(Uuid),
    /// A step attempt of a run, by its key (`draft#2`).
    Step(Uuid, String),
}

/// An open context menu: where, and for what.
#[derive(Debug, Clone, PartialEq)]
pub struct Menu {
    pub x: i32,
    pub y: i32,
    pub target: MenuTarget,
}

/// The page's overlays, shared with the rows that open them.
#[derive(Clone, Copy)]
pub struct Overlays {
    pub menu: RwSignal<Option<Menu>>,
    /// The raw data dialog: a title and the JSON it shows.
    pub raw: RwSignal<Option<(String, String)>>,
    pub switcher: RwSignal<bool>,
}

impl Overlays {
    pub fn new() -> Self {
        Self {
            menu: RwSignal::new(None),
            raw: RwSignal::new(None),
            switcher: RwSignal::new(false),
        }
    }

    /// Opens the menu for `target` where `event` happened, instead of the browser's; near the
    /// window's right or bottom edge it opens to the left or upwards, so it is whole.
    pub fn open_menu(&self, event: &leptos::ev::MouseEvent, target: MenuTarget) {
        event.prevent_default();
        event.stop_propagation();
        let size = |v: Result<leptos::wasm_bindgen::JsValue, _>| {
            v.ok().and_then(|v| v.as_f64()).unwrap_or(f64::MAX) as i32
        };
        let (width, height) = (size(window().inner_width()), size(window().inner_height()));
        let (x, y) = (event.client_x(), event.client_y());
        self.menu.set(Some(Menu {
            x: if x + MENU_WIDTH > width {
                (x - MENU_WIDTH).max(0)
            } else {
                x
            },
            y: if y + MENU_HEIGHT > height {
                (y - MENU_HEIGHT).max(0)
            } else {
                y
            },
            target,
        }));
    }

    /// Closes whatever is open; false when nothing was.
    pub fn close(&self) -> bool {
        let open = self.menu.get_untracked().is_some()
            || self.raw.get_untracked().is_some()
            || self.switcher.get_untracked();
        self.menu.set(None);
        self.raw.set(None);
        self.switcher.set(false);
        open
    }
}

impl Default for Overlays {
    fn default() -> Self {
        Self::new()
    }
}
