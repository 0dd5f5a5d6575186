-- The log viewer (/logs, GET /api/logs): every line of every run, paged by keyset on
-- (logged_at, id) in both directions with filters that combine, and searched on the server.

-- Substring search (`message ILIKE '%…%'`, case-insensitive) served by trigrams. pg_trgm is a
-- trusted extension: the database's owner may create it without being a superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX log_entries_message_trgm ON log_entries USING gin (message gin_trgm_ops);

-- The keyset: one order for every page, newest first or oldest first, `(logged_at, id) < (…)`
-- as one index range. It also serves the dashboard's latest lines (ORDER BY logged_at DESC,
-- id DESC), so the time-only index it replaces goes.
CREATE INDEX log_entries_keyset ON log_entries (logged_at, id);
DROP INDEX log_entries_by_time;

-- A run's lines in keyset order (the run filter, and the pipeline filter: the runs of a
-- pipeline come from pipeline_executions_by_pipeline, then each run's lines from here). It
-- replaces the (execution_id, logged_at) index, which it covers.
CREATE INDEX log_entries_by_execution_keyset ON log_entries (execution_id, logged_at, id)
    WHERE execution_id IS NOT NULL;
DROP INDEX log_entries_by_execution;
