//! `#[server]` functions: the browser's calls into the server.

mod health;

pub use health::*;
