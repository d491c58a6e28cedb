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
	SELECT DISTINCT k.o, k.p FROM k
	WHERE NOT EXISTS (
		SELECT 1 FROM events e
		WHERE e.org_id = k.o AND e.property_id = k.p AND ` + reports.Unapplied("k.o", "$4") + `)
), dk AS (
	SELECT k.o, k.p, k.d FROM k JOIN settled s ON s.o = k.o AND s.p = k.p
), mk AS (
	SELECT DISTINCT o, p, date_trunc('month', d)::date AS m FROM dk
), tr AS (
	-- The truth is read once: one range scan of each property month that
	-- holds a key, which both the days and the month are summed from
	-- (instead of an index probe per day beside the month's scan).
	SELECT mk.o, mk.p, mk.m, t.business_date, t.amount_cents, t.status, t.kind, t.payment_mode
	FROM mk JOIN transactions t ON t.org_id = mk.o AND t.property_id = mk.p
	  AND t.business_date >= mk.m AND t.business_date < (mk.m + interval '1 month')::date
	  AND t.kind IN ('revenue', 'expense') AND t.status IN ('approved', 'pending')
), dtruth AS (
	SELECT dk.o, dk.p, dk.d,` + finance.TruthSums + `
	FROM dk LEFT JOIN tr t ON t.o = dk.o AND t.p = dk.p AND t.business_date = dk.d
	GROUP BY dk.o, dk.p, dk.d
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
	SELECT mk.o, mk.p, mk.m,` + finance.TruthSums + `
	FROM mk LEFT JOIN tr t ON t.o = mk.o AND t.p = mk.p AND t.m = mk.m
	GROUP BY mk.o, mk.p, mk.m
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
