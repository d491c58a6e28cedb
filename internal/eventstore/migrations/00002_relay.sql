-- +goose Up
-- Where the outbox relay is: every event of a transaction older than
-- horizon is published, and stream_seq is the highest stream sequence they
-- got. One row; the relay that holds the advisory lock updates it.
CREATE TABLE relay_state (
    id          int    PRIMARY KEY CHECK (id = 1),
    cursor_tx   xid8   NOT NULL,
    cursor_seq  bigint NOT NULL,
    horizon     xid8   NOT NULL,
    stream_seq  bigint NOT NULL,
    updated_at  timestamptz NOT NULL
);
INSERT INTO relay_state VALUES (1, '0', 0, '0', 0, now());

-- +goose Down
DROP TABLE relay_state;
