-- The pipeline studio: each saved version carries its author's note, and a version saved with
-- problems on purpose is a draft, stored but never run. Both columns have constant defaults, so
-- adding them does not rewrite the table; every version saved so far was valid (not a draft).
ALTER TABLE pipeline_definitions ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE pipeline_definitions ADD COLUMN draft BOOLEAN NOT NULL DEFAULT FALSE;

-- "The newest runnable version of a pipeline": what a run that names no version starts, and the
-- step count of /pipelines. `pipeline_definitions_latest` (name, version DESC) serves the
-- newest version of any kind; the studio list's last run and today's runs use
-- `pipeline_executions_by_pipeline` (pipeline_name, started_at DESC).
CREATE INDEX pipeline_definitions_runnable ON pipeline_definitions (name, version DESC) WHERE NOT draft;
