//! One module per page.

mod dashboard;
mod not_found;

pub use dashboard::{DashboardPage, RunPage, StepPage};
pub use not_found::NotFound;
