//! What every request handler can reach, and the [`Backend`] the UI's server functions call.

use std::{sync::Arc, time::Instant};

use app::{
    backend::Backend,
    error::AppError,
    models::{DatabaseHealth, DatabaseMode, Health, HealthStatus, Snapshot, StoreSummary},
};
use axum::extract::FromRef;
use chrono::{DateTime, Utc};
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    bus::{BusLimits, EventBus},
    db::{queries, writer::EventWriter},
    http::{events::LiveSettings, ingest::IngestClaims},
};

/// Tunables of the live backbone; defaults are the production values.
#[derive(Debug, Clone, Copy)]
pub struct BackboneSettings {
    pub bus: BusLimits,
    pub live: LiveSettings,
    pub flush_every: std::time::Duration,
    pub metrics_snapshot_every: std::time::Duration,
}

impl Default for BackboneSettings {
    fn default() -> Self {
        Self {
            bus: BusLimits::default(),
            live: LiveSettings::default(),
            flush_every: std::time::Duration::from_millis(100),
            metrics_snapshot_every: std::time::Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub pool: PgPool,
    pub database_mode: DatabaseMode,
    pub bus: EventBus,
    pub live: LiveSettings,
    pub ingest_claims: IngestClaims,
    /// Flipped once on shutdown; open event streams end so the server can stop.
    pub shutdown: Arc<watch::Sender<bool>>,
    pub started_at: DateTime<Utc>,
    started: Instant,
}

impl AppState {
    /// Starts the backbone (writer, bus, relay, metrics) on `pool`.
    pub async fn start(
        leptos_options: LeptosOptions,
        pool: PgPool,
        database_mode: DatabaseMode,
        settings: BackboneSettings,
    ) -> Self {
        let writer = EventWriter::start(pool.clone(), Uuid::new_v4(), settings.flush_every);
        let bus = EventBus::start(pool.clone(), writer, settings.bus);
        tokio::spawn(crate::bus::relay::run(bus.clone(), pool.clone()));
        crate::metrics::start(bus.clone(), pool.clone(), settings.metrics_snapshot_every).await;
        Self {
            leptos_options,
            pool,
            database_mode,
            bus,
            live: settings.live,
            ingest_claims: IngestClaims::default(),
            shutdown: Arc::new(watch::channel(false).0),
            started_at: Utc::now(),
            started: Instant::now(),
        }
    }

    /// Ends open event streams, then delivers and persists everything published so far.
    pub async fn shut_down(&self) {
        self.shutdown.send_replace(true);
        self.bus.close().await;
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

    async fn snapshot(&self) -> Result<Snapshot, AppError> {
        queries::snapshot(&self.pool)
            .await
            .map_err(|e| AppError::Database(e.to_string()))
    }
}

/// The state as the UI's server functions see it.
pub fn shared_backend(state: &AppState) -> app::backend::SharedBackend {
    Arc::new(state.clone())
}
