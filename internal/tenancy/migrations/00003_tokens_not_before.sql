-- +goose Up
-- When the user was last disabled: their tokens issued before it stay
-- refused for good, also once they are enabled again. NULL: never
-- disabled. Users disabled today count from now.
ALTER TABLE users ADD COLUMN tokens_not_before timestamptz;
UPDATE users SET tokens_not_before = now() WHERE disabled;

-- +goose Down
ALTER TABLE users DROP COLUMN tokens_not_before;
