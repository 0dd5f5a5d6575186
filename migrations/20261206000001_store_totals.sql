-- Running totals of the store, kept by statement-level triggers in the same transaction as the
-- rows they count: the dashboard's first paint, the live metrics and anything polled read one
-- row instead of counting and summing the whole history (O(history) → O(1)), and the totals are
-- exact after a restart because they commit or roll back with the rows.
CREATE TABLE store_totals (
    singleton   BOOLEAN        PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    executions  BIGINT         NOT NULL,
    steps       BIGINT         NOT NULL,
    log_entries BIGINT         NOT NULL,
    tokens      BIGINT         NOT NULL,
    cost_usd    NUMERIC(24, 6) NOT NULL
);

INSERT INTO store_totals
SELECT TRUE,
       (SELECT count(*) FROM pipeline_executions),
       (SELECT count(*) FROM step_executions),
       (SELECT count(*) FROM log_entries),
       (SELECT COALESCE(sum(total_tokens), 0) FROM step_executions),
       (SELECT COALESCE(sum(cost_usd), 0) FROM step_executions);

-- Row counts: one function for the three counted tables, told which column by its argument.
CREATE FUNCTION store_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO delta FROM new_rows;
    ELSE
        SELECT -count(*) INTO delta FROM old_rows;
    END IF;
    IF delta <> 0 THEN
        EXECUTE format('UPDATE store_totals SET %I = %I + $1', TG_ARGV[0], TG_ARGV[0]) USING delta;
    END IF;
    RETURN NULL;
END $$;

-- Tokens and cost live on step rows, which are inserted empty and filled in by later updates.
CREATE FUNCTION store_totals_usage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tokens_delta BIGINT := 0;
    cost_delta   NUMERIC := 0;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT COALESCE(sum(total_tokens), 0), COALESCE(sum(cost_usd), 0)
          INTO tokens_delta, cost_delta FROM new_rows;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT tokens_delta - COALESCE(sum(total_tokens), 0), cost_delta - COALESCE(sum(cost_usd), 0)
          INTO tokens_delta, cost_delta FROM old_rows;
    END IF;
    IF tokens_delta <> 0 OR cost_delta <> 0 THEN
        UPDATE store_totals SET tokens = tokens + tokens_delta, cost_usd = cost_usd + cost_delta;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER pipeline_executions_counted_in AFTER INSERT ON pipeline_executions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_count('executions');
CREATE TRIGGER pipeline_executions_counted_out AFTER DELETE ON pipeline_executions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_count('executions');

CREATE TRIGGER step_executions_counted_in AFTER INSERT ON step_executions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_count('steps');
CREATE TRIGGER step_executions_counted_out AFTER DELETE ON step_executions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_count('steps');
CREATE TRIGGER step_executions_usage_in AFTER INSERT ON step_executions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_usage();
CREATE TRIGGER step_executions_usage_changed AFTER UPDATE ON step_executions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_usage();
CREATE TRIGGER step_executions_usage_out AFTER DELETE ON step_executions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_usage();

CREATE TRIGGER log_entries_counted_in AFTER INSERT ON log_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_count('log_entries');
CREATE TRIGGER log_entries_counted_out AFTER DELETE ON log_entries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_count('log_entries');
