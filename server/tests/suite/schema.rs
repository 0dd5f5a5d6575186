//! The first migration: tables, constraints and the indexes the dashboard's queries rely on.

use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn every_table_of_the_store_exists(pool: PgPool) {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    for table in [
        "log_entries",
        "metrics_snapshots",
        "pipeline_definitions",
        "pipeline_executions",
        "step_executions",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} missing from {tables:?}"
        );
    }
}

/// The planner uses the index for each of the dashboard's queries (sequential scans are
/// disabled so the plan shows whether an index *can* serve it, independent of table size).
#[sqlx::test(migrations = "../migrations")]
async fn the_dashboard_queries_have_indexes(pool: PgPool) {
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .expect("set");
    let cases = [
        (
            "running now",
            "SELECT id FROM pipeline_executions WHERE status IN ('pending', 'running', 'paused') ORDER BY started_at DESC",
            "pipeline_executions_active",
        ),
        (
            "runs of a pipeline by time",
            "SELECT id FROM pipeline_executions WHERE pipeline_name = 'x' ORDER BY started_at DESC LIMIT 50",
            "pipeline_executions_by_pipeline",
        ),
        (
            "steps of an execution",
            "SELECT id FROM step_executions WHERE execution_id = '00000000-0000-0000-0000-000000000001' ORDER BY started_at",
            "step_executions_by_execution",
        ),
        (
            "logs of an execution by time",
            "SELECT id FROM log_entries WHERE execution_id = '00000000-0000-0000-0000-000000000001' ORDER BY logged_at",
            "log_entries_by_execution_keyset",
        ),
        (
            "the log viewer's keyset page",
            "SELECT id FROM log_entries WHERE (logged_at, id) < ('2026-12-01', 1) ORDER BY logged_at DESC, id DESC LIMIT 200",
            "log_entries_keyset",
        ),
        (
            "the log viewer's search",
            "SELECT id FROM log_entries WHERE message ILIKE '%timeout%'",
            "log_entries_message_trgm",
        ),
    ];
    assert_plans_use(&mut conn, cases).await;
}

/// Each `(what, query, index)`: the plan of `query` uses `index`.
pub(crate) async fn assert_plans_use(
    conn: &mut sqlx::PgConnection,
    cases: impl IntoIterator<Item = (&str, impl AsRef<str>, &str)>,
) {
    for (what, query, index) in cases {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", query.as_ref()))
            .fetch_all(&mut *conn)
            .await
            .expect("explain");
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{what}: expected {index} in\n{plan}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn statuses_outside_the_lifecycle_are_rejected(pool: PgPool) {
    let error = sqlx::query(
        "INSERT INTO pipeline_executions (id, pipeline_name, status) VALUES (gen_random_uuid(), 'p', 'exploded')",
    )
    .execute(&pool)
    .await
    .expect_err("must violate the check constraint");
    assert!(
        error
            .to_string()
            .contains("pipeline_executions_status_check"),
        "{error}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_store_summary_counts_rows(pool: PgPool) {
    let id: String = sqlx::query_scalar(
        "INSERT INTO pipeline_executions (id, pipeline_name, status) VALUES (gen_random_uuid(), 'p', 'running') RETURNING id::text",
    )
    .fetch_one(&pool)
    .await
    .expect("insert execution");
    sqlx::query("INSERT INTO step_executions (execution_id, step_name, status) VALUES ($1::uuid, 'outline', 'running')")
        .bind(&id)
        .execute(&pool)
        .await
        .expect("insert step");
    sqlx::query(
        "INSERT INTO log_entries (execution_id, level, message) VALUES ($1::uuid, 'info', 'hello')",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .expect("insert log");
    for version in [1, 2] {
        sqlx::query("INSERT INTO pipeline_definitions (name, version, yaml) VALUES ('brief', $1, 'name: brief')")
            .bind(version)
            .execute(&pool)
            .await
            .expect("insert definition");
    }
    let summary = server::db::queries::store_summary(&pool)
        .await
        .expect("summary");
    assert_eq!(
        (
            summary.executions,
            summary.running,
            summary.steps,
            summary.pipelines,
            summary.log_entries
        ),
        (1, 1, 1, 1, 1),
        "two versions of one pipeline count as one pipeline"
    );
}

/// The running totals behind the first paint equal a full count and sum after inserts, updates,
/// deletes (cascading ones too) and a rolled-back transaction.
#[sqlx::test(migrations = "../migrations")]
async fn store_totals_follow_every_write(pool: PgPool) {
    type Totals = (i64, i64, i64, i64, f64);
    async fn kept(pool: &PgPool) -> Totals {
        sqlx::query_as(
            "SELECT executions, steps, log_entries, tokens, cost_usd::float8 FROM store_totals",
        )
        .fetch_one(pool)
        .await
        .expect("totals")
    }
    async fn counted(pool: &PgPool) -> Totals {
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM pipeline_executions), (SELECT count(*) FROM step_executions),
                    (SELECT count(*) FROM log_entries),
                    (SELECT COALESCE(sum(total_tokens), 0)::int8 FROM step_executions),
                    (SELECT COALESCE(sum(cost_usd), 0)::float8 FROM step_executions)",
        )
        .fetch_one(pool)
        .await
        .expect("counts")
    }
    let run = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query(sql).execute(&pool).await.expect(sql) }
    };
    assert_eq!(kept(&pool).await, (0, 0, 0, 0, 0.0));
    run("INSERT INTO pipeline_executions (id, pipeline_name, status)
         SELECT gen_random_uuid(), 'p' || i, 'running' FROM generate_series(1, 3) i")
    .await;
    run(
        "INSERT INTO step_executions (execution_id, step_name, status)
         SELECT id, s, 'running' FROM pipeline_executions, unnest(ARRAY['a', 'b']) s",
    )
    .await;
    run("UPDATE step_executions SET total_tokens = 10, cost_usd = 0.25, status = 'completed'")
        .await;
    run("UPDATE step_executions SET total_tokens = 4 WHERE step_name = 'b'").await;
    run("INSERT INTO log_entries (level, message) VALUES ('info', 'x'), ('warn', 'y')").await;
    assert_eq!(kept(&pool).await, (3, 6, 2, 42, 1.5));
    assert_eq!(kept(&pool).await, counted(&pool).await);

    // Deleting a run cascades to its steps; their usage leaves the totals with them.
    run("DELETE FROM pipeline_executions WHERE pipeline_name = 'p1'").await;
    run("DELETE FROM log_entries WHERE level = 'warn'").await;
    assert_eq!(kept(&pool).await, counted(&pool).await);
    assert_eq!(kept(&pool).await, (2, 4, 1, 28, 1.0));

    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("UPDATE step_executions SET total_tokens = 1000")
        .execute(&mut *tx)
        .await
        .expect("update");
    tx.rollback().await.expect("rollback");
    assert_eq!(kept(&pool).await, (2, 4, 1, 28, 1.0));
}
