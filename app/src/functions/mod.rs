//! `#[server]` functions: the browser's calls into the server.

mod health;
mod snapshot;

pub use health::*;
pub use snapshot::*;
