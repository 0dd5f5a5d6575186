//! Building blocks shared by the pages.

mod charts;
pub mod format;
mod header;
mod runs;
mod steps;

pub use charts::MetricsPanel;
pub use header::Header;
pub use runs::{RunsGrid, StatusBadge};
pub use steps::{Inspector, StepTimeline};
