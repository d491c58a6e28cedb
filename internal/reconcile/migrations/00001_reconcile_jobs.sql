-- +goose Up
-- Reconciliations asked for over the API, run in the background; a client
-- polls its job. At most one runs per organization (across instances).
CREATE TABLE reconcile_jobs (
    org_id          uuid   NOT NULL,
    id              uuid   NOT NULL,
    property_id     uuid,
    status          text   NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    days_checked    bigint NOT NULL DEFAULT 0,
    months_checked  bigint NOT NULL DEFAULT 0,
    counts_checked  bigint NOT NULL DEFAULT 0,
    mismatch_count  bigint NOT NULL DEFAULT 0,
    -- The first mismatches (at most 1,000), as the API lists them.
    mismatches      jsonb  NOT NULL DEFAULT '[]',
    error           text,
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX reconcile_jobs_one_running ON reconcile_jobs (org_id) WHERE status = 'running';
CREATE INDEX reconcile_jobs_created ON reconcile_jobs USING brin (created_at);

-- +goose Down
DROP TABLE reconcile_jobs;
