//! `#[server]` functions: the browser's calls into the server.

pub mod codec;
mod health;
mod pipelines;
mod runs;
mod snapshot;

pub use health::*;
pub use pipelines::*;
pub use runs::*;
pub use snapshot::*;
