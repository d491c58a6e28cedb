package reconcile

// The correction statement. It recomputes, for each requested (org,
// property, date), the day's and its month's truth from the transactions
// and the counted closing from the cash counts, subtracts the projection
// as it stands in the SAME snapshot, and upserts the difference
// additively, exactly like the projector's delta upserts. Why deltas and
// not "SET column = truth": a projector batch that commits between this
// statement's snapshot and its write (its event newer than the snapshot,
// so not in the truth read here) has already added its own delta to the
// row; ON CONFLICT DO UPDATE adds ours to the newest row version, so both
// count once. A property with an event committed but not yet applied (in
// flight, being retried, or dead-lettered) is in the truth but not in the
// projection: it is left alone ("deferred"), since correcting it now would
// count that event twice when it lands. Keys are fed in (org, property,
// date) order, the projector's lock order.
//
// $1 org ids, $2 property ids, $3 dates (parallel arrays), $4 the oldest
// event time that must be applied for a property to count as settled (the
// projector's applied-record retention), $5 now.
const correctionCTEs = `
WITH k AS (
	SELECT DISTINCT o, p, d FROM unnest($1::uuid[], $2::uuid[], $3::date[]) AS k(o, p, d)
), settled AS (
	SELECT DISTINCT k.o, k.p FROM k
	WHERE NOT EXISTS (
		SELECT 1 FROM events e
		WHERE e.org_id = k.o AND e.property_id = k.p AND e.occurred_at >= $4
		  AND NOT EXISTS (SELECT 1 FROM projector_applied a WHERE a.org_id = e.org_id AND a.event_seq = e.seq))
), dk AS (
	SELECT k.o, k.p, k.d FROM k JOIN settled s ON s.o = k.o AND s.p = k.p
), dtruth AS (
	SELECT dk.o, dk.p, dk.d,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'revenue' AND t.payment_mode = 'cash'), 0) AS cr,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'revenue' AND t.payment_mode = 'bank'), 0) AS br,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'expense' AND t.payment_mode = 'cash'), 0) AS ce,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'expense' AND t.payment_mode = 'bank'), 0) AS be,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'revenue' AND t.payment_mode = 'cash'), 0) AS pcr,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'revenue' AND t.payment_mode = 'bank'), 0) AS pbr,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'expense' AND t.payment_mode = 'cash'), 0) AS pce,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'expense' AND t.payment_mode = 'bank'), 0) AS pbe,
	  count(t.id) FILTER (WHERE t.status = 'approved') AS ac,
	  count(t.id) FILTER (WHERE t.status = 'pending') AS pc
	FROM dk LEFT JOIN transactions t ON t.org_id = dk.o AND t.property_id = dk.p AND t.business_date = dk.d
	  AND t.kind IN ('revenue', 'expense') AND t.status IN ('approved', 'pending')
	GROUP BY dk.o, dk.p, dk.d
), dfix AS (
	SELECT * FROM (
		SELECT t.o, t.p, t.d,
		  t.cr - COALESCE(r.cash_received, 0) AS cr, t.br - COALESCE(r.bank_received, 0) AS br,
		  t.ce - COALESCE(r.cash_expenses, 0) AS ce, t.be - COALESCE(r.bank_expenses, 0) AS be,
		  t.pcr - COALESCE(r.pending_cash_received, 0) AS pcr, t.pbr - COALESCE(r.pending_bank_received, 0) AS pbr,
		  t.pce - COALESCE(r.pending_cash_expenses, 0) AS pce, t.pbe - COALESCE(r.pending_bank_expenses, 0) AS pbe,
		  t.ac - COALESCE(r.approved_count, 0) AS ac, t.pc - COALESCE(r.pending_count, 0) AS pc,
		  c.counted_closing_cents AS cc, COALESCE(c.version, 0) AS cv,
		  r.counted_closing AS rcc, COALESCE(r.counted_version, 0) AS rcv
		FROM dtruth t
		LEFT JOIN daily_cash_balances r ON r.org_id = t.o AND r.property_id = t.p AND r.business_date = t.d
		LEFT JOIN cash_counts c ON c.org_id = t.o AND c.property_id = t.p AND c.date = t.d
	) x
	WHERE cr <> 0 OR br <> 0 OR ce <> 0 OR be <> 0 OR pcr <> 0 OR pbr <> 0 OR pce <> 0 OR pbe <> 0
	   OR ac <> 0 OR pc <> 0 OR cc IS DISTINCT FROM rcc
), mk AS (
	SELECT DISTINCT o, p, date_trunc('month', d)::date AS m FROM dk
), mtruth AS (
	SELECT mk.o, mk.p, mk.m,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'revenue' AND t.payment_mode = 'cash'), 0) AS cr,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'revenue' AND t.payment_mode = 'bank'), 0) AS br,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'expense' AND t.payment_mode = 'cash'), 0) AS ce,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'expense' AND t.payment_mode = 'bank'), 0) AS be,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'revenue' AND t.payment_mode = 'cash'), 0) AS pcr,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'revenue' AND t.payment_mode = 'bank'), 0) AS pbr,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'expense' AND t.payment_mode = 'cash'), 0) AS pce,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'expense' AND t.payment_mode = 'bank'), 0) AS pbe,
	  count(t.id) FILTER (WHERE t.status = 'approved') AS ac,
	  count(t.id) FILTER (WHERE t.status = 'pending') AS pc
	FROM mk LEFT JOIN transactions t ON t.org_id = mk.o AND t.property_id = mk.p
	  AND t.business_date >= mk.m AND t.business_date < (mk.m + interval '1 month')::date
	  AND t.kind IN ('revenue', 'expense') AND t.status IN ('approved', 'pending')
	GROUP BY mk.o, mk.p, mk.m
), mfix AS (
	SELECT * FROM (
		SELECT t.o, t.p, t.m,
		  t.cr - COALESCE(r.cash_received, 0) AS cr, t.br - COALESCE(r.bank_received, 0) AS br,
		  t.ce - COALESCE(r.cash_expenses, 0) AS ce, t.be - COALESCE(r.bank_expenses, 0) AS be,
		  t.pcr - COALESCE(r.pending_cash_received, 0) AS pcr, t.pbr - COALESCE(r.pending_bank_received, 0) AS pbr,
		  t.pce - COALESCE(r.pending_cash_expenses, 0) AS pce, t.pbe - COALESCE(r.pending_bank_expenses, 0) AS pbe,
		  t.ac - COALESCE(r.approved_count, 0) AS ac, t.pc - COALESCE(r.pending_count, 0) AS pc
		FROM mtruth t
		LEFT JOIN monthly_cash_balances r ON r.org_id = t.o AND r.property_id = t.p AND r.month = t.m
	) x
	WHERE cr <> 0 OR br <> 0 OR ce <> 0 OR be <> 0 OR pcr <> 0 OR pbr <> 0 OR pce <> 0 OR pbe <> 0
	   OR ac <> 0 OR pc <> 0
)`

// correctSQL writes the corrections and returns one row per row written
// ('d' a daily row, 'm' a monthly rollup) and per key deferred ('x').
// The counted closing is not a flow: it takes the newest count's value,
// unless a newer count landed since the snapshot; a count the projection
// holds but the truth lacks is dropped (its version is carried negated
// so that only the very version read is dropped).
const correctSQL = correctionCTEs + `, daily AS (
	INSERT INTO daily_cash_balances AS d (org_id, property_id, business_date,
		cash_received, bank_received, cash_expenses, bank_expenses,
		pending_cash_received, pending_bank_received, pending_cash_expenses, pending_bank_expenses,
		approved_count, pending_count, counted_closing, counted_version, updated_at)
	SELECT o, p, d, cr, br, ce, be, pcr, pbr, pce, pbe, ac::int, pc::int, cc,
		CASE WHEN cc IS NULL AND rcc IS NOT NULL THEN -rcv ELSE cv END, $5
	FROM dfix ORDER BY o, p, d
	ON CONFLICT (org_id, property_id, business_date) DO UPDATE SET
		cash_received = d.cash_received + EXCLUDED.cash_received,
		bank_received = d.bank_received + EXCLUDED.bank_received,
		cash_expenses = d.cash_expenses + EXCLUDED.cash_expenses,
		bank_expenses = d.bank_expenses + EXCLUDED.bank_expenses,
		pending_cash_received = d.pending_cash_received + EXCLUDED.pending_cash_received,
		pending_bank_received = d.pending_bank_received + EXCLUDED.pending_bank_received,
		pending_cash_expenses = d.pending_cash_expenses + EXCLUDED.pending_cash_expenses,
		pending_bank_expenses = d.pending_bank_expenses + EXCLUDED.pending_bank_expenses,
		approved_count = d.approved_count + EXCLUDED.approved_count,
		pending_count = d.pending_count + EXCLUDED.pending_count,
		counted_closing = CASE
			WHEN EXCLUDED.counted_version < 0 THEN
				CASE WHEN d.counted_version = -EXCLUDED.counted_version THEN NULL ELSE d.counted_closing END
			WHEN EXCLUDED.counted_version > 0 AND EXCLUDED.counted_version >= d.counted_version THEN EXCLUDED.counted_closing
			ELSE d.counted_closing END,
		counted_version = CASE
			WHEN EXCLUDED.counted_version < 0 THEN
				CASE WHEN d.counted_version = -EXCLUDED.counted_version THEN 0 ELSE d.counted_version END
			ELSE GREATEST(d.counted_version, EXCLUDED.counted_version) END,
		updated_at = EXCLUDED.updated_at
	RETURNING org_id, property_id, business_date
), monthly AS (
	INSERT INTO monthly_cash_balances AS m (org_id, property_id, month,
		cash_received, bank_received, cash_expenses, bank_expenses,
		pending_cash_received, pending_bank_received, pending_cash_expenses, pending_bank_expenses,
		approved_count, pending_count, updated_at)
	SELECT o, p, m, cr, br, ce, be, pcr, pbr, pce, pbe, ac::int, pc::int, $5
	FROM mfix ORDER BY o, p, m
	ON CONFLICT (org_id, property_id, month) DO UPDATE SET
		cash_received = m.cash_received + EXCLUDED.cash_received,
		bank_received = m.bank_received + EXCLUDED.bank_received,
		cash_expenses = m.cash_expenses + EXCLUDED.cash_expenses,
		bank_expenses = m.bank_expenses + EXCLUDED.bank_expenses,
		pending_cash_received = m.pending_cash_received + EXCLUDED.pending_cash_received,
		pending_bank_received = m.pending_bank_received + EXCLUDED.pending_bank_received,
		pending_cash_expenses = m.pending_cash_expenses + EXCLUDED.pending_cash_expenses,
		pending_bank_expenses = m.pending_bank_expenses + EXCLUDED.pending_bank_expenses,
		approved_count = m.approved_count + EXCLUDED.approved_count,
		pending_count = m.pending_count + EXCLUDED.pending_count,
		updated_at = EXCLUDED.updated_at
	RETURNING org_id, property_id, month
)
SELECT 'd', org_id, property_id, business_date FROM daily
UNION ALL SELECT 'm', org_id, property_id, month FROM monthly
UNION ALL SELECT 'x', k.o, k.p, k.d FROM k WHERE NOT EXISTS (SELECT 1 FROM settled s WHERE s.o = k.o AND s.p = k.p)`

// detectSQL returns the keys (of settled properties) whose day or month
// differs from the truth, writing nothing: the sampled check on reads.
const detectSQL = correctionCTEs + `
SELECT o, p, d FROM dfix
UNION SELECT o, p, m FROM mfix`
