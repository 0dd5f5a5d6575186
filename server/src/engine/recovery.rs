//! Restart safety. A run lives in the memory of the instance executing it; when that instance
//! stops (cleanly or killed), its unfinished runs are marked `interrupted` — never left
//! "running" forever — and can be re-run.
//!
//! Several instances may share a database, so "unfinished" is not enough: each live instance
//! holds a Postgres advisory lock named after its id for as long as it runs. An instance whose
//! lock can be taken is gone, and only its runs are marked.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// What marking found.
#[derive(Debug, Clone, PartialEq)]
pub struct Interrupted {
    pub execution_id: Uuid,
    pub pipeline: String,
}

const MESSAGE: &str = "pipescope stopped while this run was in progress; re-run it to start again";

/// Takes this instance's liveness lock. The connection is detached from the pool (so closing
/// the pool does not wait for it) and must live as long as the instance.
pub async fn hold_instance_lock(
    pool: &PgPool,
    instance: Uuid,
) -> Result<PgConnection, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1::text, 7))")
        .bind(instance)
        .execute(&mut connection)
        .await?;
    Ok(connection)
}

/// Marks the unfinished engine runs of every instance that is no longer alive.
pub async fn recover(pool: &PgPool, own: Uuid) -> Result<Vec<Interrupted>, sqlx::Error> {
    let owners: Vec<Option<Uuid>> = sqlx::query_scalar(
        "SELECT DISTINCT instance_id FROM pipeline_executions
         WHERE source = 'engine' AND status IN ('pending', 'running', 'paused')",
    )
    .fetch_all(pool)
    .await?;
    let mut dead = Vec::new();
    let mut connection = pool.acquire().await?;
    for owner in owners {
        // Runs recorded before instances were tracked have no owner: nobody can be running them.
        let Some(owner) = owner else {
            dead.push(Uuid::nil());
            continue;
        };
        if owner == own {
            continue;
        }
        let free: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1::text, 7))")
                .bind(owner)
                .fetch_one(&mut *connection)
                .await?;
        if free {
            sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1::text, 7))")
                .bind(owner)
                .execute(&mut *connection)
                .await?;
            dead.push(owner);
        }
    }
    drop(connection);
    mark_interrupted(pool, &dead).await
}

/// Marks the unfinished runs of `instances` (nil stands for "no recorded instance").
pub async fn mark_interrupted(
    pool: &PgPool,
    instances: &[Uuid],
) -> Result<Vec<Interrupted>, sqlx::Error> {
    if instances.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "UPDATE pipeline_executions
            SET status = 'interrupted', error = $2, completed_at = now(), updated_at = now(),
                duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint
          WHERE source = 'engine' AND status IN ('pending', 'running', 'paused')
            AND COALESCE(instance_id, '00000000-0000-0000-0000-000000000000') = ANY($1)
          RETURNING id, pipeline_name",
    )
    .bind(instances)
    .bind(MESSAGE)
    .fetch_all(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    sqlx::query(
        "UPDATE step_executions
            SET status = 'interrupted', error = $2, completed_at = now(),
                duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint
          WHERE execution_id = ANY($1) AND status IN ('pending', 'running')",
    )
    .bind(&ids)
    .bind(MESSAGE)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(execution_id, pipeline)| Interrupted {
            execution_id,
            pipeline,
        })
        .collect())
}
