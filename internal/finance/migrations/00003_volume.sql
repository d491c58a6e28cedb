-- +goose Up
-- The gross volume of each organization: the sum of the amounts of every
-- approved or pending state a row ever took (each create, edit and
-- approval adds the row's amount; nothing ever subtracts). Every report
-- figure is a signed sum of event deltas and is bounded by twice this, so
-- capping it (domain.MaxOrgVolumeCents) keeps every figure inside int64.
-- A domain, not a table CHECK: its constraint is cached per session.
CREATE DOMAIN org_volume_cents AS bigint
    CONSTRAINT org_volume_bound CHECK (VALUE BETWEEN 0 AND 4000000000000000000);

CREATE TABLE org_volumes (
    org_id      uuid             NOT NULL PRIMARY KEY,
    gross_cents org_volume_cents NOT NULL
);

-- What the events written so far added (capped: an organization already
-- past the bound can write no more money).
INSERT INTO org_volumes (org_id, gross_cents)
SELECT org_id, LEAST(sum((metadata->>'amountCents')::numeric), 4000000000000000000)::bigint
FROM events
WHERE event_type IN ('revenue_added', 'revenue_updated', 'revenue_approved',
                     'expense_added', 'expense_updated', 'expense_approved')
GROUP BY org_id;

-- +goose Down
DROP TABLE org_volumes;
DROP DOMAIN org_volume_cents;
