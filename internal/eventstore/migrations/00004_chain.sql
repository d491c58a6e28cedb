-- +goose Up
-- Tamper evidence: each organization's events form a hash chain. An event
-- stores its place in its organization's chain (chain_pos 1, 2, ...), the
-- SHA-256 of its canonical content (content_hash, computed by the writer
-- from the envelope and metadata), the hash of the event before it in the
-- chain (prev_hash; empty for the first) and its own link hash
-- sha256(prev_hash || content_hash). Events written before this migration
-- keep NULLs: they predate the chain.
ALTER TABLE events
    ADD COLUMN chain_pos    bigint,
    ADD COLUMN content_hash bytea,
    ADD COLUMN prev_hash    bytea,
    ADD COLUMN hash         bytea;

-- One link per position; org_id leads, so a partitioning by org_id keeps it.
CREATE UNIQUE INDEX events_chain ON events (org_id, chain_pos) WHERE chain_pos IS NOT NULL;

-- The end of each organization's chain. An append updates this row in the
-- write's own transaction: its row lock orders the appends of one
-- organization (the second waits for the first to commit or roll back),
-- while appends of different organizations never meet. It also lets
-- verify notice a chain whose tail was cut off.
CREATE TABLE event_chain_heads (
    org_id    uuid   PRIMARY KEY,
    pos       bigint NOT NULL,
    prev_hash bytea  NOT NULL,
    hash      bytea  NOT NULL
);

-- Events are never deleted nor rewritten: only the relay's publication
-- state and the projector's applied records are pruned. The trigger stops
-- a mistaken statement; the chain exposes a deliberate one (a superuser
-- can disable triggers, not forge the chain's head hashes recorded
-- elsewhere). Filling the chain columns of a pre-chain event stays allowed.
-- +goose StatementBegin
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_pos IS NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
-- +goose StatementEnd
CREATE TRIGGER events_no_delete BEFORE DELETE OR UPDATE ON events FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- +goose Down
DROP TRIGGER events_no_truncate ON events;
DROP TRIGGER events_no_delete ON events;
DROP FUNCTION events_append_only();
DROP TABLE event_chain_heads;
DROP INDEX events_chain;
ALTER TABLE events DROP COLUMN hash, DROP COLUMN prev_hash, DROP COLUMN content_hash, DROP COLUMN chain_pos;
