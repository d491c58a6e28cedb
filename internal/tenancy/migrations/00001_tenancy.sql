-- +goose Up
CREATE TABLE orgs (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE users (
    org_id       uuid NOT NULL REFERENCES orgs (id),
    id           uuid NOT NULL,
    email        text NOT NULL,
    display_name text NOT NULL,
    role         text NOT NULL CHECK (role IN ('ADMIN', 'MANAGER')),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- Emails are unique across the platform, and login starts from one without
-- knowing the organization: a global lookup table keeps the tenant tables
-- keyed (and later partitioned) by org_id.
CREATE TABLE user_logins (
    email         text PRIMARY KEY,
    org_id        uuid NOT NULL,
    user_id       uuid NOT NULL,
    password_hash text NOT NULL,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id)
);

CREATE TABLE properties (
    org_id     uuid NOT NULL REFERENCES orgs (id),
    id         uuid NOT NULL,
    name       text NOT NULL,
    type       text NOT NULL CHECK (type IN ('hotel', 'hostel', 'resort', 'apartment')),
    timezone   text NOT NULL,
    currency   text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE manager_properties (
    org_id      uuid NOT NULL,
    user_id     uuid NOT NULL,
    property_id uuid NOT NULL,
    PRIMARY KEY (org_id, user_id, property_id),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id),
    FOREIGN KEY (org_id, property_id) REFERENCES properties (org_id, id)
);

-- +goose Down
DROP TABLE manager_properties;
DROP TABLE properties;
DROP TABLE user_logins;
DROP TABLE users;
DROP TABLE orgs;
