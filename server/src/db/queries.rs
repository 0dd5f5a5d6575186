//! Read queries behind the health check and the overview.

use std::time::Instant;

use app::models::StoreSummary;
use sqlx::PgPool;

/// What one round trip to the database tells about it.
pub struct Ping {
    pub latency_ms: f64,
    pub server_version: String,
    pub running_executions: i64,
}

/// One query, so the latency is that of a single round trip.
pub async fn ping(pool: &PgPool) -> Result<Ping, sqlx::Error> {
    let started = Instant::now();
    let (server_version, running_executions): (String, i64) = sqlx::query_as(
        "SELECT current_setting('server_version'), \
                (SELECT count(*) FROM pipeline_executions WHERE status = 'running')",
    )
    .fetch_one(pool)
    .await?;
    Ok(Ping {
        latency_ms: started.elapsed().as_secs_f64() * 1_000.0,
        server_version,
        running_executions,
    })
}

pub async fn store_summary(pool: &PgPool) -> Result<StoreSummary, sqlx::Error> {
    let (executions, running, steps, pipelines, log_entries): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM pipeline_executions), \
                    (SELECT count(*) FROM pipeline_executions WHERE status = 'running'), \
                    (SELECT count(*) FROM step_executions), \
                    (SELECT count(DISTINCT name) FROM pipeline_definitions), \
                    (SELECT count(*) FROM log_entries)",
        )
        .fetch_one(pool)
        .await?;
    Ok(StoreSummary {
        executions,
        running,
        steps,
        pipelines,
        log_entries,
    })
}
