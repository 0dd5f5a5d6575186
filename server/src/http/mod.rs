//! HTTP routes outside the Leptos pages, one module per area, merged in [`crate::app`].

pub mod access;
pub mod api;
pub mod error;
pub mod events;
pub mod export;
pub mod headers;
pub mod health;
pub mod history;
pub mod ingest;
pub mod limits;
pub mod logs;
pub mod otlp;
pub mod overview;
pub mod paths;
pub mod prometheus;
pub mod runs;
pub mod serve;
pub mod static_files;
