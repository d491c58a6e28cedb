-- +goose Up
-- Per organization, a transaction id below which every event of the
-- organization is known to be in the projection: a consistent read checks
-- only the organization's events from there on (events_org_tx), so the
-- check stays short however old the organization, and does not depend on
-- applied-event records that pruning removed. Advanced by consistent reads.
CREATE TABLE consistency_watermarks (
    org_id        uuid PRIMARY KEY,
    applied_below xid8 NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- +goose Down
DROP TABLE consistency_watermarks;
