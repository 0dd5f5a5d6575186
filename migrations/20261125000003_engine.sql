-- The engine: which instance runs an execution (so a restarted or surviving instance can tell
-- runs whose instance died from runs another live instance is still executing), and the saved
-- definition version each run used (so it can be re-run and its steps replayed).
ALTER TABLE pipeline_executions ADD COLUMN instance_id UUID;
CREATE INDEX pipeline_definitions_latest ON pipeline_definitions (name, version DESC);
