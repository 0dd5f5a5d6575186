//! The pages' building blocks, one component (and the state it owns) per file. They import each
//! other by path, in one direction: `panels` and `overlays` (shared state) below the quadrants,
//! the quadrants below the menus, the switcher and the shortcuts that act on them.

pub mod charts;
pub mod context_menu;
pub mod header;
pub mod inspector;
pub mod overlays;
pub mod panels;
pub mod runs;
pub mod shortcuts;
pub mod switcher;
pub mod timeline;
