-- +goose Up
-- A key is reserved before its request runs, marked committed inside the
-- write's own transaction, and answered (done) after: state says which.
-- owner is the request holding a reservation; reserved_at its lease (the
-- holder renews it while it runs). Rows from before were answered ones.
ALTER TABLE idempotency_keys
    ADD COLUMN state text NOT NULL DEFAULT 'done',
    ADD COLUMN owner uuid,
    ADD COLUMN reserved_at timestamptz,
    ADD COLUMN headers jsonb;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_state CHECK (state IN ('reserved', 'committed', 'done'));
ALTER TABLE idempotency_keys ALTER COLUMN status SET DEFAULT 0, ALTER COLUMN response SET DEFAULT ''::bytea;

-- +goose Down
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_state;
ALTER TABLE idempotency_keys DROP COLUMN state, DROP COLUMN owner, DROP COLUMN reserved_at, DROP COLUMN headers;
ALTER TABLE idempotency_keys ALTER COLUMN status DROP DEFAULT, ALTER COLUMN response DROP DEFAULT;
