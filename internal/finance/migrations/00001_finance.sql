-- +goose Up
-- Revenues and expenses share one shape, so they share one table; kind
-- tells them apart and is part of every query.
CREATE TABLE transactions (
    org_id         uuid   NOT NULL,
    id             uuid   NOT NULL,
    kind           text   NOT NULL CHECK (kind IN ('revenue', 'expense')),
    property_id    uuid   NOT NULL,
    source         text   CHECK (source IN ('room', 'addon', 'other')),
    category       text,
    amount_cents   bigint NOT NULL CHECK (amount_cents BETWEEN 1 AND 1000000000000000),
    currency       text   NOT NULL,
    payment_mode   text   NOT NULL CHECK (payment_mode IN ('cash', 'bank')),
    occurred_at    timestamptz NOT NULL,
    business_date  date   NOT NULL,
    bank_reference text,
    description    text,
    status         text   NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    version        int    NOT NULL CHECK (version > 0),
    created_by     uuid   NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_by     uuid   NOT NULL,
    updated_at     timestamptz NOT NULL,
    reviewed_by    uuid,
    reviewed_at    timestamptz,
    review_notes   text,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, property_id) REFERENCES properties (org_id, id),
    CHECK ((kind = 'revenue') = (source IS NOT NULL)),
    CHECK ((kind = 'expense') = (category IS NOT NULL))
);

-- Lists: newest business date first, within the org or one property.
CREATE INDEX transactions_list ON transactions (org_id, kind, business_date DESC, id DESC);
CREATE INDEX transactions_property_list ON transactions (org_id, property_id, kind, business_date DESC, id DESC);
-- The daily approval gate looks for a manager's old pending rows.
CREATE INDEX transactions_pending_by_creator ON transactions (org_id, created_by, property_id, created_at)
    WHERE status = 'pending';

-- A MANAGER's delete waits here for an ADMIN's decision.
CREATE TABLE deletion_requests (
    org_id         uuid NOT NULL,
    id             uuid NOT NULL,
    transaction_id uuid NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('revenue', 'expense')),
    property_id    uuid NOT NULL,
    status         text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_by   uuid NOT NULL,
    requested_at   timestamptz NOT NULL,
    decided_by     uuid,
    decided_at     timestamptz,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX deletion_requests_one_pending ON deletion_requests (org_id, transaction_id)
    WHERE status = 'pending';

-- An ADMIN's leave for a manager to add rows on a date although older rows
-- of theirs are still pending.
CREATE TABLE daily_approvals (
    org_id          uuid NOT NULL,
    manager_user_id uuid NOT NULL,
    date            date NOT NULL,
    id              uuid NOT NULL,
    granted_by      uuid NOT NULL,
    granted_at      timestamptz NOT NULL,
    PRIMARY KEY (org_id, manager_user_id, date),
    FOREIGN KEY (org_id, manager_user_id) REFERENCES users (org_id, id)
);

-- +goose Down
DROP TABLE daily_approvals;
DROP TABLE deletion_requests;
DROP TABLE transactions;
