-- +goose Up
-- Point-in-time reads: a property's per-day flows as they stood once its
-- organization's events up to chain position chain_pos were written (all
-- of them at or before max_event_at). A read "as of T" starts from the
-- newest snapshot with max_event_at <= T and folds only the events after
-- it; a read that folded at least the snapshot interval of events stores a
-- new one. days maps a business date to [cash in, bank in, cash out,
-- bank out, the same four pending, approved count, pending count,
-- counted closing + 1 (0: none)].
CREATE TABLE balance_snapshots (
    org_id       uuid   NOT NULL,
    property_id  uuid   NOT NULL,
    chain_pos    bigint NOT NULL,
    max_event_at timestamptz NOT NULL,
    taken_at     timestamptz NOT NULL,
    days         jsonb  NOT NULL,
    PRIMARY KEY (org_id, property_id, chain_pos)
);

-- hmp rebuild's progress: one row per organization a run has rebuilt
-- and swapped, so that an interrupted run resumes after it.
CREATE TABLE rebuild_progress (
    run          text   NOT NULL,
    org_id       uuid   NOT NULL,
    events       bigint NOT NULL,
    changed_rows int    NOT NULL,
    lock_micros  bigint NOT NULL,
    done_at      timestamptz NOT NULL,
    PRIMARY KEY (run, org_id)
);

-- +goose Down
DROP TABLE rebuild_progress;
DROP TABLE balance_snapshots;
