-- +goose Up
-- Per property and business date, only that day's flows: approved and
-- pending (for includePending), cash and bank, in and out. A closing
-- balance is never stored, so a back-dated change rewrites nothing after
-- its own day. The projector maintains these rows with delta upserts.
CREATE TABLE daily_cash_balances (
    org_id                uuid   NOT NULL,
    property_id           uuid   NOT NULL,
    business_date         date   NOT NULL,
    cash_received         bigint NOT NULL DEFAULT 0,
    bank_received         bigint NOT NULL DEFAULT 0,
    cash_expenses         bigint NOT NULL DEFAULT 0,
    bank_expenses         bigint NOT NULL DEFAULT 0,
    pending_cash_received bigint NOT NULL DEFAULT 0,
    pending_bank_received bigint NOT NULL DEFAULT 0,
    pending_cash_expenses bigint NOT NULL DEFAULT 0,
    pending_bank_expenses bigint NOT NULL DEFAULT 0,
    approved_count        int    NOT NULL DEFAULT 0,
    pending_count         int    NOT NULL DEFAULT 0,
    -- The physically counted closing cash, from the newest cash count.
    counted_closing       bigint,
    counted_version       int    NOT NULL DEFAULT 0,
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (org_id, property_id, business_date)
) WITH (fillfactor = 80);

-- The same flows summed per month (first day of the month): opening(D)
-- sums the months before D's month plus the days of D's month before D.
CREATE TABLE monthly_cash_balances (
    org_id                uuid   NOT NULL,
    property_id           uuid   NOT NULL,
    month                 date   NOT NULL,
    cash_received         bigint NOT NULL DEFAULT 0,
    bank_received         bigint NOT NULL DEFAULT 0,
    cash_expenses         bigint NOT NULL DEFAULT 0,
    bank_expenses         bigint NOT NULL DEFAULT 0,
    pending_cash_received bigint NOT NULL DEFAULT 0,
    pending_bank_received bigint NOT NULL DEFAULT 0,
    pending_cash_expenses bigint NOT NULL DEFAULT 0,
    pending_bank_expenses bigint NOT NULL DEFAULT 0,
    approved_count        int    NOT NULL DEFAULT 0,
    pending_count         int    NOT NULL DEFAULT 0,
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (org_id, property_id, month),
    CHECK (extract(day FROM month) = 1)
) WITH (fillfactor = 80);

-- Events the projector applied, written in the transaction that applied
-- them: a redelivered or replayed event finds itself here and changes
-- nothing. Pruned once no copy of the event can still be delivered.
CREATE TABLE projector_applied (
    org_id     uuid   NOT NULL,
    event_seq  bigint NOT NULL,
    applied_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, event_seq)
);
CREATE INDEX projector_applied_at ON projector_applied USING brin (applied_at);

-- The counted cash at a property's day end; a later count replaces it.
CREATE TABLE cash_counts (
    org_id                uuid   NOT NULL,
    property_id           uuid   NOT NULL,
    date                  date   NOT NULL,
    counted_closing_cents bigint NOT NULL CHECK (counted_closing_cents BETWEEN 0 AND 1000000000000000),
    version               int    NOT NULL CHECK (version > 0),
    counted_by            uuid   NOT NULL,
    counted_at            timestamptz NOT NULL,
    PRIMARY KEY (org_id, property_id, date),
    FOREIGN KEY (org_id, property_id) REFERENCES properties (org_id, id)
);

-- +goose Down
DROP TABLE cash_counts;
DROP TABLE projector_applied;
DROP TABLE monthly_cash_balances;
DROP TABLE daily_cash_balances;
