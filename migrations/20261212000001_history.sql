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
-- texts are in any language and often code). Each text is cut at 50,000 characters: a
-- tsvector holds at most 1 MB, and an index expression that fails would refuse the step's
-- row. The query repeats this expression exactly (server/src/db/history.rs, STEP_TEXT).
CREATE INDEX step_executions_text_search ON step_executions USING gin (
    to_tsvector('simple'::regconfig,
                left(COALESCE(prompt, ''), 50000) || ' ' || left(COALESCE(response, ''), 50000))
);
