package reports

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
)

// This package is the one writer of the cash book (daily_cash_balances,
// monthly_cash_balances) and of the projector's applied-event records.
// Other packages compute and call: the projector applies event batches
// (apply.go), reconciliation applies corrections through ApplyDeltas,
// rebuild swaps a fold in through StageShadow and SwapShadow, benchmarks
// empty it with ResetCashBook, and every check of "has the projector
// applied this event" uses Unapplied.

// flowColumns are the flow columns of both tables, in domain.Flows order.
const flowColumns = `cash_received, bank_received, cash_expenses, bank_expenses,
		pending_cash_received, pending_bank_received, pending_cash_expenses, pending_bank_expenses,
		approved_count, pending_count`

// addFlows adds an upsert's EXCLUDED flows to the row aliased r: every
// writer adds, none sets, so concurrent writers never lose each other's
// changes.
const addFlows = `
		cash_received = r.cash_received + EXCLUDED.cash_received,
		bank_received = r.bank_received + EXCLUDED.bank_received,
		cash_expenses = r.cash_expenses + EXCLUDED.cash_expenses,
		bank_expenses = r.bank_expenses + EXCLUDED.bank_expenses,
		pending_cash_received = r.pending_cash_received + EXCLUDED.pending_cash_received,
		pending_bank_received = r.pending_bank_received + EXCLUDED.pending_bank_received,
		pending_cash_expenses = r.pending_cash_expenses + EXCLUDED.pending_cash_expenses,
		pending_bank_expenses = r.pending_bank_expenses + EXCLUDED.pending_bank_expenses,
		approved_count = r.approved_count + EXCLUDED.approved_count,
		pending_count = r.pending_count + EXCLUDED.pending_count,
		updated_at = EXCLUDED.updated_at`

// Unapplied is the one rule for "an event the projector has not applied
// yet", as a SQL condition on an events row aliased e: at or above its
// organization's consistency watermark (below it every event is known to
// be applied), inside the applied-record retention (an older event counts
// as applied: its record may have been pruned, and if it truly never was
// applied no wait can help), and without an applied record. org is the
// SQL expression of e's organization known before the scan ("$1", a key's
// column), so that the watermark is read once, or "e.org_id" in a scan of
// every organization; floor is the SQL expression of the oldest
// occurred_at that counts (now minus the retention). Both are SQL text
// from the caller's own query, never request data.
func Unapplied(org, floor string) string {
	return `(e.tx_id >= coalesce((SELECT w.applied_below FROM consistency_watermarks w WHERE w.org_id = ` + org + `), '0'::xid8)
		AND e.occurred_at >= ` + floor + `
		AND NOT EXISTS (SELECT 1 FROM projector_applied a WHERE a.org_id = e.org_id AND a.event_seq = e.seq))`
}

// Delta is an amount to add to one row of the cash book: a property day's
// row, or with Month the rollup of the month of Date.
type Delta struct {
	OrgID, PropertyID domain.ID
	Date              domain.Date
	Month             bool
	// Flows is added to the row's flows (a missing row starts at zero).
	Flows domain.Flows
	// Counted and CountedVersion change the day's counted closing (daily
	// rows only). A positive version sets Counted (nil: none) unless the
	// row holds a newer count; a negative one drops the count of version
	// -CountedVersion if the row still holds that very one (a newer count
	// stays); zero leaves the row's count as it is.
	Counted        *int64
	CountedVersion int32
}

// applyDeltasSQL adds a batch of deltas with one upsert per table, in
// (organization, property, date) order: the projector's lock order.
const applyDeltasSQL = `
WITH x AS (
	SELECT * FROM unnest($2::bool[], $3::uuid[], $4::uuid[], $5::date[],
		$6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[],
		$14::bigint[], $15::bigint[], $16::bigint[], $17::int[])
		AS x(month, o, p, dt, cr, br, ce, be, pcr, pbr, pce, pbe, ac, pc, cc, cv)
), daily AS (
	INSERT INTO daily_cash_balances AS r (org_id, property_id, business_date, ` + flowColumns + `,
		counted_closing, counted_version, updated_at)
	SELECT o, p, dt, cr, br, ce, be, pcr, pbr, pce, pbe, ac::int, pc::int, cc, cv, $1
	FROM x WHERE NOT month ORDER BY o, p, dt
	ON CONFLICT (org_id, property_id, business_date) DO UPDATE SET ` + addFlows + `,
		counted_closing = CASE
			WHEN EXCLUDED.counted_version < 0 THEN
				CASE WHEN r.counted_version = -EXCLUDED.counted_version THEN NULL ELSE r.counted_closing END
			WHEN EXCLUDED.counted_version > 0 AND EXCLUDED.counted_version >= r.counted_version THEN EXCLUDED.counted_closing
			ELSE r.counted_closing END,
		counted_version = CASE
			WHEN EXCLUDED.counted_version < 0 THEN
				CASE WHEN r.counted_version = -EXCLUDED.counted_version THEN 0 ELSE r.counted_version END
			ELSE GREATEST(r.counted_version, EXCLUDED.counted_version) END
	RETURNING 1
), monthly AS (
	INSERT INTO monthly_cash_balances AS r (org_id, property_id, month, ` + flowColumns + `, updated_at)
	SELECT o, p, date_trunc('month', dt)::date, cr, br, ce, be, pcr, pbr, pce, pbe, ac::int, pc::int, $1
	FROM x WHERE month ORDER BY o, p, dt
	ON CONFLICT (org_id, property_id, month) DO UPDATE SET ` + addFlows + `
	RETURNING 1
)
SELECT (SELECT count(*) FROM daily) + (SELECT count(*) FROM monthly)`

// sortedDeltas returns deltas with month deltas on their month's first
// day, in key order (every statement locks rows in one order), refusing a
// row named twice.
func sortedDeltas(deltas []Delta) ([]Delta, error) {
	type rowKey struct {
		org, prop domain.ID
		date      domain.Date
		month     bool
	}
	seen := make(map[rowKey]bool, len(deltas))
	sorted := slices.Clone(deltas)
	for i, d := range sorted {
		if d.Month {
			sorted[i].Date = d.Date.MonthStart()
		}
		k := rowKey{d.OrgID, d.PropertyID, sorted[i].Date, d.Month}
		if seen[k] {
			return nil, fmt.Errorf("apply deltas: row %s %s %s named twice", d.OrgID, d.PropertyID, sorted[i].Date)
		}
		seen[k] = true
	}
	slices.SortFunc(sorted, func(a, b Delta) int {
		if c := slices.Compare(a.OrgID[:], b.OrgID[:]); c != 0 {
			return c
		}
		if c := slices.Compare(a.PropertyID[:], b.PropertyID[:]); c != 0 {
			return c
		}
		return a.Date.Compare(b.Date)
	})
	return sorted, nil
}

// ApplyDeltas adds deltas to the cash book in one statement, stamping the
// rows updated at now, and returns the number of rows written. Each row
// may be named once per call (a month by any date of it): it answers an
// error naming the row otherwise, and writes nothing. The additions are
// checked: a figure that would leave int64 fails the statement (SQLSTATE
// 22003) and nothing is written. Callers correcting the projection compute
// their deltas from one snapshot of the truth and of the rows (see package
// reconcile): because the upsert adds, a projector batch that commits in
// between keeps its own change.
func ApplyDeltas(ctx context.Context, q eventstore.Querier, now time.Time, deltas []Delta) (int, error) {
	if len(deltas) == 0 {
		return 0, nil
	}
	sorted, err := sortedDeltas(deltas)
	if err != nil {
		return 0, err
	}
	n := len(sorted)
	var (
		months     = make([]bool, n)
		orgs       = make([]pgtype.UUID, n)
		props      = make([]pgtype.UUID, n)
		dates      = make([]time.Time, n)
		flows      [10][]int64
		counted    = make([]*int64, n)
		versions   = make([]int32, n)
		flowValues = func(f domain.Flows) [10]int64 {
			return [10]int64{f.CashReceived, f.BankReceived, f.CashExpenses, f.BankExpenses,
				f.PendingCashReceived, f.PendingBankReceived, f.PendingCashExpenses, f.PendingBankExpenses,
				f.ApprovedCount, f.PendingCount}
		}
	)
	for i := range flows {
		flows[i] = make([]int64, n)
	}
	for i, d := range sorted {
		months[i] = d.Month
		orgs[i] = pgtype.UUID{Bytes: d.OrgID, Valid: true}
		props[i] = pgtype.UUID{Bytes: d.PropertyID, Valid: true}
		dates[i] = d.Date.Time()
		for j, v := range flowValues(d.Flows) {
			flows[j][i] = v
		}
		if !d.Month {
			counted[i], versions[i] = d.Counted, d.CountedVersion
		}
	}
	args := []any{now.UTC(), months, orgs, props, dates}
	for _, col := range flows {
		args = append(args, col)
	}
	args = append(args, counted, versions)
	rows, err := q.Query(ctx, applyDeltasSQL, args...)
	if err != nil {
		return 0, fmt.Errorf("apply deltas: %w", postgres.Translate(err))
	}
	defer rows.Close()
	var written int64
	for rows.Next() {
		if err := rows.Scan(&written); err != nil {
			return 0, fmt.Errorf("apply deltas: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("apply deltas: %w", postgres.Translate(err))
	}
	return int(written), nil
}

// CorrectCashBook runs compute and adds the deltas it returns with
// ApplyDeltas, in one transaction that keeps a rebuild's swap out
// (LockCashBook waits for it, and it for LockCashBook) from before compute
// reads until the deltas are written: deltas computed as truth minus the
// rows compute read must land on those rows, not on rows swapped in
// meanwhile. Projector batches are not kept out and need not be: the
// upsert adds, so their changes and the deltas both count. compute reads
// in READ COMMITTED, so it must read the truth and the rows in one
// statement (one snapshot); it may run more than once (the transaction is
// retried after a deadlock). It returns the rows written.
func CorrectCashBook(ctx context.Context, db postgres.Beginner, now time.Time, compute func(eventstore.Querier) ([]Delta, error)) (int, error) {
	var written int
	err := postgres.WithTx(ctx, db, func(tx pgx.Tx) error {
		// ROW EXCLUSIVE is what the upserts take anyway; taking it first
		// makes compute's snapshot come after any swap it waited for.
		if _, err := tx.Exec(ctx, `LOCK TABLE daily_cash_balances, monthly_cash_balances IN ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock cash book: %w", postgres.Translate(err))
		}
		deltas, err := compute(tx)
		if err != nil {
			return err
		}
		written, err = ApplyDeltas(ctx, tx, now, deltas)
		return err
	})
	return written, err
}

// ResetCashBook empties the cash book and the applied-event records: for a
// benchmark that owns its database and starts every round from nothing
// (the projector then applies every event again). Never on a live
// database.
func ResetCashBook(ctx context.Context, q eventstore.Querier) error {
	rows, err := q.Query(ctx, `TRUNCATE daily_cash_balances, monthly_cash_balances, projector_applied`)
	if err != nil {
		return fmt.Errorf("reset cash book: %w", postgres.Translate(err))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reset cash book: %w", postgres.Translate(err))
	}
	return nil
}
