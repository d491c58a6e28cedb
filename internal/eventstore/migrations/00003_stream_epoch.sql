-- +goose Up
-- The creation time of the events stream the relay last published to: a
-- different one means the stream was deleted or its data lost, its
-- sequences started over, and the relay re-publishes what consumers may
-- still need. NULL until the relay first looks.
ALTER TABLE relay_state ADD COLUMN stream_epoch timestamptz;

-- A consistent read checks that every event of its organization committed
-- before it is applied, starting at that organization's watermark.
CREATE INDEX events_org_tx ON events (org_id, tx_id);

-- +goose Down
DROP INDEX events_org_tx;
ALTER TABLE relay_state DROP COLUMN stream_epoch;
