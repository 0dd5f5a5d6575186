-- pipescope's store. Statuses are TEXT with CHECK constraints (readable in psql, cheap to extend
-- with a later migration); costs are NUMERIC so sums over millions of steps stay exact.

-- Pipeline definitions saved from files or the browser; every save is a new version.
CREATE TABLE pipeline_definitions (
    id          BIGSERIAL   PRIMARY KEY,
    name        TEXT        NOT NULL,
    version     INTEGER     NOT NULL CHECK (version > 0),
    description TEXT,
    yaml        TEXT        NOT NULL,
    source      TEXT        NOT NULL DEFAULT 'browser' CHECK (source IN ('file', 'browser', 'api')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

-- One run of a pipeline, local (engine) or reported by another program (ingest).
CREATE TABLE pipeline_executions (
    id                UUID        PRIMARY KEY,
    pipeline_name     TEXT        NOT NULL,
    pipeline_version  INTEGER,
    status            TEXT        NOT NULL CHECK (status IN
                          ('pending', 'running', 'paused', 'completed', 'failed', 'cancelled', 'interrupted')),
    source            TEXT        NOT NULL DEFAULT 'engine' CHECK (source IN ('engine', 'ingest')),
    batch_id          UUID,
    config            JSONB       NOT NULL DEFAULT '{}',
    inputs            JSONB       NOT NULL DEFAULT '{}',
    results           JSONB,
    error             TEXT,
    prompt_tokens     BIGINT      NOT NULL DEFAULT 0,
    completion_tokens BIGINT      NOT NULL DEFAULT 0,
    total_tokens      BIGINT      NOT NULL DEFAULT 0,
    cost_usd          NUMERIC(14, 6) NOT NULL DEFAULT 0,
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at      TIMESTAMPTZ,
    duration_ms       BIGINT,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- "Running now": small partial index, stays tiny however long the history grows.
CREATE INDEX pipeline_executions_active
    ON pipeline_executions (started_at DESC)
    WHERE status IN ('pending', 'running', 'paused');
-- "Runs of a pipeline by time".
CREATE INDEX pipeline_executions_by_pipeline ON pipeline_executions (pipeline_name, started_at DESC);
-- "Recent runs" and time-range history.
CREATE INDEX pipeline_executions_by_time ON pipeline_executions (started_at DESC);
CREATE INDEX pipeline_executions_by_batch ON pipeline_executions (batch_id) WHERE batch_id IS NOT NULL;

-- One attempt of one step; retries and replays are further rows linked to the first.
CREATE TABLE step_executions (
    id                BIGSERIAL   PRIMARY KEY,
    execution_id      UUID        NOT NULL REFERENCES pipeline_executions (id) ON DELETE CASCADE,
    step_name         TEXT        NOT NULL,
    attempt           INTEGER     NOT NULL DEFAULT 1 CHECK (attempt > 0),
    replay_of         BIGINT      REFERENCES step_executions (id) ON DELETE SET NULL,
    status            TEXT        NOT NULL CHECK (status IN
                          ('pending', 'running', 'completed', 'failed', 'cancelled', 'skipped', 'interrupted')),
    provider          TEXT,
    model             TEXT,
    config            JSONB       NOT NULL DEFAULT '{}',
    system_prompt     TEXT,
    template          TEXT,
    variables         JSONB,
    prompt            TEXT,
    response          TEXT,
    token_budget      INTEGER,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    total_tokens      INTEGER,
    cost_usd          NUMERIC(14, 6),
    ttft_ms           INTEGER,
    duration_ms       BIGINT,
    error             TEXT,
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at      TIMESTAMPTZ,
    UNIQUE (execution_id, step_name, attempt)
);
-- "Steps of an execution" in order.
CREATE INDEX step_executions_by_execution ON step_executions (execution_id, started_at);

-- Log lines, global or tied to an execution and step.
CREATE TABLE log_entries (
    id           BIGSERIAL   PRIMARY KEY,
    execution_id UUID        REFERENCES pipeline_executions (id) ON DELETE CASCADE,
    step_name    TEXT,
    level        TEXT        NOT NULL CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error')),
    message      TEXT        NOT NULL,
    context      JSONB       NOT NULL DEFAULT '{}',
    logged_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- "Logs of an execution by time".
CREATE INDEX log_entries_by_execution ON log_entries (execution_id, logged_at) WHERE execution_id IS NOT NULL;
-- The global log stream, newest first.
CREATE INDEX log_entries_by_time ON log_entries (logged_at DESC);

-- Periodic totals for the performance charts and history.
CREATE TABLE metrics_snapshots (
    id                 BIGSERIAL   PRIMARY KEY,
    taken_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    running            INTEGER     NOT NULL,
    tokens_total       BIGINT      NOT NULL,
    cost_total_usd     NUMERIC(14, 6) NOT NULL,
    error_rate         DOUBLE PRECISION NOT NULL,
    latency_p50_ms     DOUBLE PRECISION,
    latency_p95_ms     DOUBLE PRECISION,
    latency_p99_ms     DOUBLE PRECISION,
    throughput_per_min DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX metrics_snapshots_by_time ON metrics_snapshots (taken_at DESC);
