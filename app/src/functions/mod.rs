//! `#[server]` functions: the browser's calls into the server.

mod health;
mod runs;
mod snapshot;

pub use health::*;
pub use runs::*;
pub use snapshot::*;
