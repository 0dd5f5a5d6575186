-- The event log behind the live backbone: every persisted event, numbered by one sequence shared
-- by all instances on this database. SSE clients that fall out of an instance's in-memory window
-- resume from here; other instances read newly flushed batches from here after a NOTIFY.
CREATE SEQUENCE event_seq AS BIGINT;

CREATE TABLE events (
    seq          BIGINT      PRIMARY KEY,
    name         TEXT        NOT NULL,
    execution_id UUID,
    step_name    TEXT,
    at           TIMESTAMPTZ NOT NULL,
    -- The instance that published it (relay skips its own).
    origin       UUID        NOT NULL,
    -- Ingest idempotency key: a retried batch is not stored twice.
    client_id    TEXT        UNIQUE,
    -- The event as on the wire without seq/at: {"event": …, "data": …}.
    payload      JSONB       NOT NULL
);
CREATE INDEX events_by_execution ON events (execution_id, seq) WHERE execution_id IS NOT NULL;
CREATE INDEX events_by_origin ON events (origin, seq);
