-- +goose Up
-- Point in time (see moment.go). last_at is the time of the organization's
-- last appended event: the next one is never stamped earlier, so event
-- times follow chain (commit) order. sealed_at is the latest moment a
-- point-in-time read has answered for: later events are stamped after it,
-- so that answer never changes. Both are kept on the chain head because
-- its row lock is what orders the appends. (Versions 100 and 101 are Go
-- migrations: a lower number would be a missing migration to goose on
-- every database migrated since.)
ALTER TABLE event_chain_heads
    ADD COLUMN last_at   timestamptz,
    ADD COLUMN sealed_at timestamptz;
UPDATE event_chain_heads h SET last_at = e.occurred_at
FROM events e WHERE e.org_id = h.org_id AND e.chain_pos = h.pos;

-- +goose Down
ALTER TABLE event_chain_heads DROP COLUMN sealed_at, DROP COLUMN last_at;
