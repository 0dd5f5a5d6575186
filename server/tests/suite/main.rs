//! The server's integration tests in one test binary, a module per area: each file used to be a
//! binary of its own that linked the whole server again (a dozen links of ~0.5 GB each, which
//! filled a CI machine's disk and took minutes).

mod common;

mod access;
mod backbone;
mod batch;
mod cli;
mod engine;
mod faults;
mod history;
mod http;
mod lifecycle;
mod limits;
mod logs;
mod openapi;
mod otlp;
mod preview;
mod projection;
mod prometheus;
mod providers;
mod refusals;
mod retention;
mod schema;
mod studio;
