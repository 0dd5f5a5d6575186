//! Wire types: defined once, serialised by the server, deserialised by the browser.

mod health;

pub use health::{DatabaseHealth, DatabaseMode, Health, HealthStatus, StoreSummary};
