-- +goose Up
-- The remembered outcome of a create sent with an Idempotency-Key, written
-- in the create's own transaction so that the two never disagree.
CREATE TABLE idempotency_keys (
    org_id       uuid  NOT NULL,
    user_id      uuid  NOT NULL,
    route        text  NOT NULL,
    key          text  NOT NULL,
    request_hash bytea NOT NULL,
    status       int   NOT NULL,
    response     bytea NOT NULL,
    tx_id        xid8  NOT NULL DEFAULT pg_current_xact_id(),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id, route, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys USING brin (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
