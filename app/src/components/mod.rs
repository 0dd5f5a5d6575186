//! Building blocks shared by the pages.

pub mod format;
mod header;
mod stat;

pub use header::Header;
pub use stat::Stat;
