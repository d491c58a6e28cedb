package reconcile

import (
	"hmp/internal/finance"
	"hmp/internal/reports"
)

// flowDeltas are the columns of a fix: for each flow sum that a daily row
// and a monthly rollup both hold, the truth (t) minus the projection (r).
const flowDeltas = `
		  t.cr - COALESCE(r.cash_received, 0) AS cr, t.br - COALESCE(r.bank_received, 0) AS br,
		  t.ce - COALESCE(r.cash_expenses, 0) AS ce, t.be - COALESCE(r.bank_expenses, 0) AS be,
		  t.pcr - COALESCE(r.pending_cash_received, 0) AS pcr, t.pbr - COALESCE(r.pending_bank_received, 0) AS pbr,
		  t.pce - COALESCE(r.pending_cash_expenses, 0) AS pce, t.pbe - COALESCE(r.pending_bank_expenses, 0) AS pbe,
		  t.ac - COALESCE(r.approved_count, 0) AS ac, t.pc - COALESCE(r.pending_count, 0) AS pc`

// flowsDiffer holds when any of flowDeltas is not zero.
const flowsDiffer = `cr <> 0 OR br <> 0 OR ce <> 0 OR be <> 0 OR pcr <> 0 OR pbr <> 0 OR pce <> 0 OR pbe <> 0
	   OR ac <> 0 OR pc <> 0`

// The correction queries. They recompute, for each requested (org,
// property, date), the day's and its month's truth from the transactions
// (finance.TruthSums) and the counted closing from the cash counts, and
// subtract the projection as it stands in the SAME snapshot: the deltas
// that reports.CorrectCashBook adds, exactly like the projector's delta
// upserts. Why deltas and not "SET column = truth": a projector batch that
// commits between this snapshot and the write (its event newer than the
// snapshot, so not in the truth read here) has already added its own delta
// to the row; adding ours to the newest row version makes both count once.
// A property with an event committed but not yet applied (in flight, being
// retried, or dead-lettered: reports.Unapplied) is in the truth but not in
// the projection: it is left alone ("deferred"), since correcting it now
// would count that event twice when it lands.
//
// $1 org ids, $2 property ids, $3 dates (parallel arrays), $4 the oldest
// event time that must be applied for a property to count as settled (the
// projector's applied-record retention).
func correctionCTEs() string {
	return `
WITH k AS (
	SELECT DISTINCT o, p, d FROM unnest($1::uuid[], $2::uuid[], $3::date[]) AS k(o, p, d)
), settled AS (
	-- Once per property, not per key (a batch holds many dates of few
	-- properties), and as a probe of that property's events: OFFSET 0
	-- keeps the planner from turning the NOT EXISTS into an anti join,
	-- which it may run as a scan of every recent event of every
	-- organization (the whole table: there is no index on occurred_at).
	SELECT kp.o, kp.p FROM (SELECT DISTINCT o, p FROM k) kp
	WHERE NOT EXISTS (
		SELECT 1 FROM events e
		WHERE e.org_id = kp.o AND e.property_id = kp.p AND ` + reports.Unapplied("kp.o", "$4") + `
		OFFSET 0)
), dk AS (
	SELECT k.o, k.p, k.d FROM k JOIN settled s ON s.o = k.o AND s.p = k.p
), mk AS (
	SELECT DISTINCT o, p, date_trunc('month', d)::date AS m FROM dk
), dtruth AS (
	-- Each sum is its own probe of the transactions index (an aggregate
	-- without GROUP BY answers zeros for a day without any): linear in
	-- the keys, where joining the keys to one shared scan of their months
	-- let the planner, which cannot estimate either side, pick a nested
	-- loop over both (keys x rows).
	SELECT dk.o, dk.p, dk.d, t.*
	FROM dk CROSS JOIN LATERAL (
		SELECT` + finance.TruthSums + `
		FROM transactions t
		WHERE t.org_id = dk.o AND t.property_id = dk.p AND t.business_date = dk.d
		  AND t.kind IN ('revenue', 'expense') AND t.status IN ('approved', 'pending')) t
), dfix AS (
	SELECT * FROM (
		SELECT t.o, t.p, t.d,` + flowDeltas + `,
		  c.counted_closing_cents AS cc, COALESCE(c.version, 0) AS cv,
		  r.counted_closing AS rcc, COALESCE(r.counted_version, 0) AS rcv
		FROM dtruth t
		LEFT JOIN daily_cash_balances r ON r.org_id = t.o AND r.property_id = t.p AND r.business_date = t.d
		LEFT JOIN cash_counts c ON c.org_id = t.o AND c.property_id = t.p AND c.date = t.d
	) x
	WHERE ` + flowsDiffer + ` OR cc IS DISTINCT FROM rcc
), mtruth AS (
	SELECT mk.o, mk.p, mk.m, t.*
	FROM mk CROSS JOIN LATERAL (
		SELECT` + finance.TruthSums + `
		FROM transactions t
		WHERE t.org_id = mk.o AND t.property_id = mk.p
		  AND t.business_date >= mk.m AND t.business_date < (mk.m + interval '1 month')::date
		  AND t.kind IN ('revenue', 'expense') AND t.status IN ('approved', 'pending')) t
), mfix AS (
	SELECT * FROM (
		SELECT t.o, t.p, t.m,` + flowDeltas + `
		FROM mtruth t
		LEFT JOIN monthly_cash_balances r ON r.org_id = t.o AND r.property_id = t.p AND r.month = t.m
	) x
	WHERE ` + flowsDiffer + `
)`
}

// deltasSQL reads the corrections without writing them: one row per daily
// row ('d') and monthly rollup ('m') that differs, with the amounts to
// add, and one per key deferred ('x'). The counted closing is not a flow:
// it takes the newest count's value, unless a newer count landed since the
// snapshot; a count the projection holds but the truth lacks is dropped
// (its version is carried negated so that only the very version read is
// dropped); see reports.Delta.
func deltasSQL() string {
	return correctionCTEs() + `
SELECT 'd', o, p, d, cr::bigint, br::bigint, ce::bigint, be::bigint, pcr::bigint, pbr::bigint, pce::bigint, pbe::bigint,
	ac::bigint, pc::bigint, cc, (CASE WHEN cc IS NULL AND rcc IS NOT NULL THEN -rcv ELSE cv END)::int
FROM dfix
UNION ALL
SELECT 'm', o, p, m, cr::bigint, br::bigint, ce::bigint, be::bigint, pcr::bigint, pbr::bigint, pce::bigint, pbe::bigint,
	ac::bigint, pc::bigint, NULL::bigint, 0
FROM mfix
UNION ALL
SELECT 'x', k.o, k.p, k.d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL::bigint, 0
FROM k WHERE NOT EXISTS (SELECT 1 FROM settled s WHERE s.o = k.o AND s.p = k.p)`
}

// detectSQL returns the keys (of settled properties) whose day or month
// differs from the truth, writing nothing: the sampled check on reads.
func detectSQL() string {
	return correctionCTEs() + `
SELECT o, p, d FROM dfix
UNION SELECT o, p, m FROM mfix`
}
