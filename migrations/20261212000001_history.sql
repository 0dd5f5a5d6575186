-- The history (/runs, GET /api/history): every run, filtered, in one of four orders, paged by
-- keyset on (sort key, id) — `(started_at, id) < (…)` is one index range, however deep the page.

-- Start time, both ways. These replace the indexes of the same names (same leading columns, so
-- the dashboard's "recent runs" and "runs of a pipeline by time" are served as before) with the
-- id added as the keyset's tie-break.
DROP INDEX pipeline_executions_by_time;
CREATE INDEX pipeline_executions_by_time ON pipeline_executions (started_at DESC, id DESC);
DROP INDEX pipeline_executions_by_pipeline;
CREATE INDEX pipeline_executions_by_pipeline
    ON pipeline_executions (pipeline_name, started_at DESC, id DESC);

-- One status (failed runs, say, a few percent of all): read in order from its own range rather
-- than walking every run to find them.
CREATE INDEX pipeline_executions_by_status ON pipeline_executions (status, started_at DESC, id DESC);

-- Longest and most expensive first. A run still going has no duration yet: -1 puts it last.
CREATE INDEX pipeline_executions_by_duration
    ON pipeline_executions ((COALESCE(duration_ms, -1)) DESC, id DESC);
CREATE INDEX pipeline_executions_by_cost ON pipeline_executions (cost_usd DESC, id DESC);

-- Full-text search of step prompts and responses ('simple': no stemming or stop words, the
-- texts are in any language and often code), kept off the ingest path: a GIN entry for every
-- word of every step inside the writer's transaction cost ingest a third of its rate, and
-- building such an index over an existing history held start-up for minutes. A step whose
-- texts change is only queued here (one small row, by trigger, in the writer's transaction);
-- the search indexer (server/src/db/search.rs) turns the queue into documents in the
-- background, in batches, and the history's search reads `step_search`.
CREATE TABLE step_search (
    step_id      BIGINT   PRIMARY KEY REFERENCES step_executions (id) ON DELETE CASCADE,
    execution_id UUID     NOT NULL,
    document     TSVECTOR NOT NULL
);
CREATE INDEX step_search_document ON step_search USING gin (document);

CREATE TABLE step_search_queue (
    step_id BIGINT PRIMARY KEY
);

-- The steps stored before this migration: indexed in the background like any other.
INSERT INTO step_search_queue
SELECT id FROM step_executions WHERE prompt IS NOT NULL OR response IS NOT NULL;

-- Statement-level, like the totals' triggers: one INSERT for a writer's whole batch. An update
-- queues a step only when its texts changed (retention clearing them included: the indexer
-- then drops its document); a status or token update is not queued.
CREATE FUNCTION step_search_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO step_search_queue
        SELECT id FROM new_rows WHERE prompt IS NOT NULL OR response IS NOT NULL
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO step_search_queue
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.prompt IS DISTINCT FROM o.prompt OR n.response IS DISTINCT FROM o.response
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER step_executions_search_in AFTER INSERT ON step_executions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION step_search_enqueue();
CREATE TRIGGER step_executions_search_changed AFTER UPDATE ON step_executions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION step_search_enqueue();
