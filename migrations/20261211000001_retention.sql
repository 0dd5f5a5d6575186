-- Retention (--retain-days): how far the pruning of old runs' prompts and responses has got, so a
-- restart goes on from there instead of reading every old run again.
CREATE TABLE retention_progress (
    -- One row: the runs up to (through, through_id) by (started_at, id) have had their texts
    -- pruned.
    id         BOOLEAN     PRIMARY KEY DEFAULT true CHECK (id),
    through    TIMESTAMPTZ NOT NULL,
    through_id UUID        NOT NULL
);
