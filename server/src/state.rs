//! What every request handler can reach, and the [`Backend`] the UI's server functions call.

use std::{sync::Arc, time::Instant};

use app::{
    backend::Backend,
    error::AppError,
    models::{DatabaseHealth, DatabaseMode, Health, HealthStatus, StoreSummary},
};
use axum::extract::FromRef;
use chrono::{DateTime, Utc};
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use crate::db::queries;

#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub pool: PgPool,
    pub database_mode: DatabaseMode,
    pub started_at: DateTime<Utc>,
    started: Instant,
}

impl AppState {
    pub fn new(leptos_options: LeptosOptions, pool: PgPool, database_mode: DatabaseMode) -> Self {
        Self {
            leptos_options,
            pool,
            database_mode,
            started_at: Utc::now(),
            started: Instant::now(),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

#[async_trait::async_trait]
impl Backend for AppState {
    async fn health(&self) -> Health {
        let ping = queries::ping(&self.pool).await;
        let (database, running_executions) = match ping {
            Ok(ping) => (
                DatabaseHealth {
                    reachable: true,
                    mode: self.database_mode,
                    latency_ms: Some(ping.latency_ms),
                    server_version: Some(ping.server_version),
                    error: None,
                },
                ping.running_executions,
            ),
            Err(error) => (
                DatabaseHealth {
                    reachable: false,
                    mode: self.database_mode,
                    latency_ms: None,
                    server_version: None,
                    error: Some(error.to_string()),
                },
                0,
            ),
        };
        Health {
            status: if database.reachable {
                HealthStatus::Ok
            } else {
                HealthStatus::Degraded
            },
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at,
            checked_at: Utc::now(),
            uptime_secs: self.started.elapsed().as_secs(),
            database,
            running_executions,
        }
    }

    async fn store_summary(&self) -> Result<StoreSummary, AppError> {
        queries::store_summary(&self.pool)
            .await
            .map_err(|e| AppError::Database(e.to_string()))
    }
}

/// The state as the UI's server functions see it.
pub fn shared_backend(state: &AppState) -> app::backend::SharedBackend {
    Arc::new(state.clone())
}
