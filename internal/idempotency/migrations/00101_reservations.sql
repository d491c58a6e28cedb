-- +goose Up
-- A key is reserved by the one request that may act on it before that
-- request runs (status 0, owner set), marked written in the transaction
-- of the write it guards, and completed with the answer afterwards.
-- Version 101: after the partitioning of version 100, so that existing
-- schemas take it in order; ALTER TABLE on the parent reaches every
-- partition.
ALTER TABLE idempotency_keys
    ADD COLUMN owner   uuid,
    ADD COLUMN written boolean NOT NULL DEFAULT false,
    ADD COLUMN headers jsonb;

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN owner, DROP COLUMN written, DROP COLUMN headers;
