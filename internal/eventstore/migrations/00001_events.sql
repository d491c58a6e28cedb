-- +goose Up
-- The event store is also the transactional outbox: an event is committed
-- with the change it describes, and the relay publishes it afterwards.
CREATE TABLE events (
    org_id            uuid   NOT NULL,
    seq               bigint GENERATED ALWAYS AS IDENTITY,
    id                uuid   NOT NULL,
    event_type        text   NOT NULL,
    entity_type       text   NOT NULL,
    entity_id         uuid   NOT NULL,
    aggregate_version int    NOT NULL CHECK (aggregate_version > 0),
    property_id       uuid,
    user_id           uuid   NOT NULL,
    occurred_at       timestamptz NOT NULL,
    metadata          jsonb  NOT NULL,
    -- The writing transaction: the relay publishes only events whose
    -- transaction is older than every running one, so none is skipped.
    tx_id             xid8   NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (org_id, seq),
    -- One event per entity version: of two concurrent writers of an entity
    -- the loser fails here instead of losing an update.
    CONSTRAINT events_entity_version UNIQUE (org_id, entity_type, entity_id, aggregate_version)
);

CREATE INDEX events_property ON events (org_id, property_id, seq);
CREATE INDEX events_tx ON events (tx_id, seq);

-- +goose Down
DROP TABLE events;
