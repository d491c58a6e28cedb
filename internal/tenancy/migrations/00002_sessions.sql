-- +goose Up
-- A disabled user keeps their rows and history but may not log in, and
-- their tokens stop working.
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;

-- Tokens revoked by a logout, kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    org_id     uuid NOT NULL,
    token_id   text NOT NULL,
    user_id    uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, token_id)
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

-- +goose Down
DROP TABLE revoked_tokens;
ALTER TABLE users DROP COLUMN disabled;
