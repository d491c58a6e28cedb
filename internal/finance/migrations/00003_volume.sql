-- +goose Up
-- The gross volume of each organization: the sum of the amounts of every
-- approved or pending state a row ever took (each create, edit and
-- approval adds the row's amount; nothing ever subtracts). Every report
-- figure is a signed sum of event deltas and is bounded by twice this, so
-- capping it (domain.MaxOrgVolumeCents) keeps every figure inside int64.
--
-- Kept in 16 slots per organization, each capped at a sixteenth of the
-- cap: a write adds its amount to one slot with room that no concurrent
-- write holds (SKIP LOCKED), so writes of one organization do not queue
-- behind each other's commits on a single counter row. The sum of the
-- slots never passes the cap; a write is refused when no slot has room for
-- it, which can happen at most 16 maximal amounts before the cap.
CREATE TABLE org_volume_slots (
    org_id      uuid     NOT NULL,
    slot        smallint NOT NULL,
    gross_cents bigint   NOT NULL,
    PRIMARY KEY (org_id, slot)
);

-- What the events written so far added, spread over the slots (capped: an
-- organization already past the cap can write no more money).
INSERT INTO org_volume_slots (org_id, slot, gross_cents)
SELECT v.org_id, g, LEAST(ceil(v.total / 16), 250000000000000000)::bigint
FROM (SELECT org_id, sum((metadata->>'amountCents')::numeric) AS total
      FROM events
      WHERE event_type IN ('revenue_added', 'revenue_updated', 'revenue_approved',
                           'expense_added', 'expense_updated', 'expense_approved')
      GROUP BY org_id) v
CROSS JOIN generate_series(0, 15) g;

-- +goose StatementBegin
-- add_org_volume adds amount (1 .. 10^15) to one slot of the organization,
-- or raises SQLSTATE 23514 naming the constraint org_volume_bound when no
-- slot has room for it.
CREATE FUNCTION add_org_volume(org uuid, amount bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    cap CONSTANT bigint := 250000000000000000; -- domain.MaxOrgVolumeCents / 16
    s smallint;
BEGIN
    -- A slot with room that no concurrent write holds.
    SELECT slot INTO s FROM org_volume_slots
    WHERE org_id = org AND gross_cents <= cap - amount
    ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        -- The organization's first write, or every slot with room is held
        -- by a concurrent write: wait for one.
        INSERT INTO org_volume_slots (org_id, slot, gross_cents)
        SELECT org, g, 0 FROM generate_series(0, 15) g
        WHERE NOT EXISTS (SELECT 1 FROM org_volume_slots WHERE org_id = org)
        ON CONFLICT DO NOTHING;
        SELECT slot INTO s FROM org_volume_slots
        WHERE org_id = org AND gross_cents <= cap - amount
        ORDER BY slot LIMIT 1 FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the organization''s volume cap is reached' USING ERRCODE = '23514', CONSTRAINT = 'org_volume_bound';
        END IF;
    END IF;
    UPDATE org_volume_slots SET gross_cents = gross_cents + amount WHERE org_id = org AND slot = s;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION add_org_volume(uuid, bigint);
DROP TABLE org_volume_slots;
