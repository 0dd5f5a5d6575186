//! The Postgres connection: pipescope's own server or the one `DATABASE_URL` names, migrated at
//! start-up.

pub mod embedded;
pub mod events;
pub mod executions;
pub mod history;
pub mod logs;
pub mod projection;
pub mod queries;
pub mod retention;
pub mod search;
pub mod storable;
pub mod traces;

use std::{path::Path, str::FromStr, time::Duration};

use app::models::DatabaseMode;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    ConnectOptions, Executor, PgPool,
};

use crate::error::{redact_url, StartupError};
use embedded::EmbeddedPostgres;

/// Embedded migrations from `/migrations`, run on every start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The pool plus, when pipescope started it, the PostgreSQL it owns.
pub struct Database {
    pub pool: PgPool,
    pub mode: DatabaseMode,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `url`, or starts pipescope's own PostgreSQL in `data_dir` when there is none,
    /// then migrates.
    pub async fn open(
        url: Option<&str>,
        data_dir: &Path,
        postgres_bin: Option<&Path>,
    ) -> Result<Self, StartupError> {
        let (pool, mode, embedded) = match url {
            Some(url) => (connect_external(url).await?, DatabaseMode::External, None),
            None => {
                let mut postgres = EmbeddedPostgres::start(data_dir, postgres_bin).await?;
                match connect_embedded(&postgres).await {
                    Ok(pool) => (pool, DatabaseMode::Embedded, Some(postgres)),
                    Err(error) => {
                        postgres.stop().await;
                        return Err(error);
                    }
                }
            }
        };
        let mut database = Self {
            pool,
            mode,
            embedded,
        };
        if let Err(error) = MIGRATOR.run(&database.pool).await {
            database.close().await;
            return Err(error.into());
        }
        Ok(database)
    }

    /// Closes the pool, then stops pipescope's own PostgreSQL if it started one.
    pub async fn close(&mut self) {
        self.pool.close().await;
        if let Some(postgres) = self.embedded.as_mut() {
            postgres.stop().await;
        }
    }
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(16)
        // A health check must answer quickly when the database is gone.
        .acquire_timeout(Duration::from_secs(3))
}

async fn connect_external(url: &str) -> Result<PgPool, StartupError> {
    let shown = redact_url(url);
    let options = PgConnectOptions::from_str(url).map_err(|e| StartupError::Database {
        url: shown.clone(),
        reason: format!("not a valid PostgreSQL URL ({e})"),
    })?;
    let options = options.log_statements(tracing::log::LevelFilter::Debug);
    tokio::time::timeout(
        Duration::from_secs(10),
        pool_options().connect_with(options),
    )
    .await
    .map_err(|_| StartupError::Database {
        url: shown.clone(),
        reason: "no answer within 10 s".into(),
    })?
    .map_err(|e| StartupError::Database {
        url: shown,
        reason: e.to_string(),
    })
}

async fn connect_embedded(postgres: &EmbeddedPostgres) -> Result<PgPool, StartupError> {
    let failed = |e: sqlx::Error| StartupError::Postgres {
        message: e.to_string(),
    };
    let admin = pool_options()
        .max_connections(1)
        .connect_with(postgres.connect_options("postgres"))
        .await
        .map_err(failed)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(embedded::DATABASE)
            .fetch_one(&admin)
            .await
            .map_err(failed)?;
    if !exists {
        admin
            .execute(format!("CREATE DATABASE {}", embedded::DATABASE).as_str())
            .await
            .map_err(failed)?;
    }
    admin.close().await;
    pool_options()
        .connect_with(postgres.connect_options(embedded::DATABASE))
        .await
        .map_err(failed)
}
