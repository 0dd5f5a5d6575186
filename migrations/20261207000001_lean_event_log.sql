-- The event log keeps one copy of an LLM step's large texts: a `prompt:sent` or
-- `response:received` whose texts are also in its step's row is stored without them (prompt,
-- template and variables; response), and `step_attempt` names that row (execution_id,
-- step_name, step_attempt). Reads of the log put the texts back from the row. NULL: the
-- payload is whole. A nullable column without a default is added without rewriting the table.
ALTER TABLE events ADD COLUMN step_attempt INTEGER;

-- Every event was also entered in this index for the relay's read of one instance's flushed
-- batch (`origin = $1 AND seq BETWEEN $2 AND $3`); the primary key's range scan of that batch's
-- seqs serves it as well (it holds that batch and whatever other instances numbered in
-- between), so ingest no longer pays an index entry per event for it.
DROP INDEX events_by_origin;
