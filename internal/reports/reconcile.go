package reports

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"hmp/internal/domain"
	"hmp/internal/finance"
	"hmp/internal/postgres"
)

// Truth streams what the transactions add up to per property day.
type Truth interface {
	StreamDayTotals(ctx context.Context, org, property *domain.ID, fn func(finance.DayTotals) error) error
}

// Mismatch is one projected figure that differs from the truth.
type Mismatch struct {
	OrgID      domain.ID `json:"orgId"`
	PropertyID domain.ID `json:"propertyId"`
	// Period is a date (a daily row) or a month ("2026-11").
	Period   string `json:"period"`
	Field    string `json:"field"`
	Expected int64  `json:"expected"`
	Actual   int64  `json:"actual"`
}

// Reconciliation is the outcome of a truth check.
type Reconciliation struct {
	DaysChecked, MonthsChecked, CountsChecked int64
	// Mismatches counts every mismatch; Details holds the first
	// MaxMismatchDetails of them.
	Mismatches int64
	Details    []Mismatch
	Duration   time.Duration
}

// MaxMismatchDetails bounds the mismatches a reconciliation lists.
const MaxMismatchDetails = 1000

// Reconciler recomputes the cash book from the transactions and compares.
// It runs one reconciliation at a time: each streams four queries at once
// and merges them, so several running together could each hold part of
// the pool while waiting for the rest, and wait for each other until they
// time out.
type Reconciler struct {
	svc   *Service
	truth Truth
	turn  chan struct{} // holds a token while a reconciliation runs
}

// NewReconciler returns a Reconciler over the projection of svc.
func NewReconciler(svc *Service, truth Truth) *Reconciler {
	return &Reconciler{svc: svc, truth: truth, turn: make(chan struct{}, 1)}
}

type projDay struct {
	key     dayKey
	flows   Flows
	counted *int64
}

type countRow struct {
	key     dayKey
	counted int64
}

// Reconcile checks every daily row, monthly rollup and counted closing of
// the scope (nil org: everything; nil property: the whole organization)
// against the truth recomputed from the approved and pending transactions
// and the recorded cash counts. It streams all sides in key order and
// merges them, so memory stays flat however large the scope. It first
// waits for a reconciliation already running to finish; a ctx that ends
// meanwhile is its error.
func (r *Reconciler) Reconcile(ctx context.Context, org, property *domain.ID) (Reconciliation, error) {
	select {
	case r.turn <- struct{}{}:
		defer func() { <-r.turn }()
	case <-ctx.Done():
		return Reconciliation{}, fmt.Errorf("reconcile: wait for the running reconciliation: %w", ctx.Err())
	}
	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	truth := make(chan projDay, 512)
	days := make(chan projDay, 512)
	counts := make(chan countRow, 512)
	months := make(chan projDay, 512)
	g.Go(func() error {
		defer close(truth)
		return r.truth.StreamDayTotals(ctx, org, property, func(t finance.DayTotals) error {
			f := Flows{t.CashReceived, t.BankReceived, t.CashExpenses, t.BankExpenses,
				t.PendingCashReceived, t.PendingBankReceived, t.PendingCashExpenses, t.PendingBankExpenses,
				t.ApprovedCount, t.PendingCount}
			return send(ctx, truth, projDay{key: dayKey{t.OrgID, t.PropertyID, t.Date}, flows: f})
		})
	})
	g.Go(func() error { defer close(days); return r.svc.streamRows(ctx, "daily", org, property, days) })
	g.Go(func() error { defer close(months); return r.svc.streamRows(ctx, "monthly", org, property, months) })
	g.Go(func() error { defer close(counts); return r.svc.streamCounts(ctx, org, property, counts) })

	var res Reconciliation
	g.Go(func() error {
		res = merge(truth, days, counts, months)
		return nil
	})
	if err := g.Wait(); err != nil {
		return Reconciliation{}, fmt.Errorf("reconcile: %w", err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// merge walks the four sorted streams together.
func merge(truth, days <-chan projDay, counts <-chan countRow, months <-chan projDay) Reconciliation {
	res := Reconciliation{Details: []Mismatch{}}
	report := func(k dayKey, period, field string, want, got int64) {
		res.Mismatches++
		if len(res.Details) < MaxMismatchDetails {
			res.Details = append(res.Details, Mismatch{OrgID: k.org, PropertyID: k.property, Period: period, Field: field, Expected: want, Actual: got})
		}
	}
	compare := func(k dayKey, period string, want, got Flows) {
		names := [...]string{"cashReceivedCents", "bankReceivedCents", "cashExpensesCents", "bankExpensesCents",
			"pendingCashReceivedCents", "pendingBankReceivedCents", "pendingCashExpensesCents", "pendingBankExpensesCents",
			"approvedCount", "pendingCount"}
		w := [...]int64{want.CashReceived, want.BankReceived, want.CashExpenses, want.BankExpenses, want.PendingCashReceived,
			want.PendingBankReceived, want.PendingCashExpenses, want.PendingBankExpenses, want.ApprovedCount, want.PendingCount}
		g := [...]int64{got.CashReceived, got.BankReceived, got.CashExpenses, got.BankExpenses, got.PendingCashReceived,
			got.PendingBankReceived, got.PendingCashExpenses, got.PendingBankExpenses, got.ApprovedCount, got.PendingCount}
		for i := range names {
			if w[i] != g[i] {
				report(k, period, names[i], w[i], g[i])
			}
		}
	}

	// Monthly truth is summed from the daily truth as it streams by (it is
	// sorted, so a month's days are contiguous) and compared with the
	// monthly rows when the month is complete.
	mHead, mOK := <-months
	var (
		curMonth  dayKey
		monthSum  Flows
		haveMonth bool
	)
	checkMonth := func(k dayKey, want Flows) {
		for mOK && compareKeys(mHead.key, k) < 0 {
			res.MonthsChecked++
			compare(mHead.key, monthLabel(mHead.key.date), Flows{}, mHead.flows)
			mHead, mOK = <-months
		}
		res.MonthsChecked++
		if mOK && compareKeys(mHead.key, k) == 0 {
			compare(k, monthLabel(k.date), want, mHead.flows)
			mHead, mOK = <-months
			return
		}
		compare(k, monthLabel(k.date), want, Flows{})
	}
	flushMonth := func() {
		if haveMonth {
			checkMonth(curMonth, monthSum)
		}
		haveMonth, monthSum = false, Flows{}
	}

	tHead, tOK := <-truth
	dHead, dOK := <-days
	cHead, cOK := <-counts
	for tOK || dOK || cOK {
		// The smallest key among the heads.
		var k dayKey
		first := true
		for _, c := range []struct {
			ok bool
			k  dayKey
		}{{tOK, tHead.key}, {dOK, dHead.key}, {cOK, cHead.key}} {
			if c.ok && (first || compareKeys(c.k, k) < 0) {
				k, first = c.k, false
			}
		}
		var want, got Flows
		var counted *int64
		var truthCount *int64
		if tOK && tHead.key == k {
			want = tHead.flows
			tHead, tOK = <-truth
		}
		if dOK && dHead.key == k {
			got, counted = dHead.flows, dHead.counted
			dHead, dOK = <-days
		}
		if cOK && cHead.key == k {
			v := cHead.counted
			truthCount = &v
			res.CountsChecked++
			cHead, cOK = <-counts
		}
		res.DaysChecked++
		compare(k, k.date.String(), want, got)
		switch {
		case truthCount != nil && counted == nil:
			report(k, k.date.String(), "countedClosingCents", *truthCount, 0)
		case truthCount == nil && counted != nil:
			report(k, k.date.String(), "countedClosingCents", 0, *counted)
		case truthCount != nil && *truthCount != *counted:
			report(k, k.date.String(), "countedClosingCents", *truthCount, *counted)
		}
		if !want.IsZero() {
			mk := dayKey{k.org, k.property, k.date.MonthStart()}
			if haveMonth && mk != curMonth {
				flushMonth()
			}
			curMonth, haveMonth = mk, true
			monthSum.add(want, 1)
		}
	}
	flushMonth()
	for mOK { // monthly rows beyond the last truth month
		res.MonthsChecked++
		compare(mHead.key, monthLabel(mHead.key.date), Flows{}, mHead.flows)
		mHead, mOK = <-months
	}
	return res
}

func monthLabel(d domain.Date) string { return d.String()[:7] }

const (
	streamDailySQL = `
	SELECT org_id, property_id, business_date, cash_received, bank_received, cash_expenses, bank_expenses,
	       pending_cash_received, pending_bank_received, pending_cash_expenses, pending_bank_expenses,
	       approved_count, pending_count, counted_closing
	FROM daily_cash_balances
	WHERE ($1::uuid IS NULL OR org_id = $1) AND ($2::uuid IS NULL OR property_id = $2)
	ORDER BY org_id, property_id, business_date`

	streamMonthlySQL = `
	SELECT org_id, property_id, month, cash_received, bank_received, cash_expenses, bank_expenses,
	       pending_cash_received, pending_bank_received, pending_cash_expenses, pending_bank_expenses,
	       approved_count, pending_count, NULL::bigint
	FROM monthly_cash_balances
	WHERE ($1::uuid IS NULL OR org_id = $1) AND ($2::uuid IS NULL OR property_id = $2)
	ORDER BY org_id, property_id, month`

	streamCountsSQL = `
	SELECT org_id, property_id, date, counted_closing_cents FROM cash_counts
	WHERE ($1::uuid IS NULL OR org_id = $1) AND ($2::uuid IS NULL OR property_id = $2)
	ORDER BY org_id, property_id, date`
)

func (s *Service) streamRows(ctx context.Context, table string, org, property *domain.ID, out chan<- projDay) error {
	sql := streamDailySQL
	if table == "monthly" {
		sql = streamMonthlySQL
	}
	rows, err := s.pool.Query(ctx, sql, org, property)
	if err != nil {
		return fmt.Errorf("stream %s rows: %w", table, postgres.Translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r projDay
			d time.Time
			f = &r.flows
		)
		if err := rows.Scan(&r.key.org, &r.key.property, &d, &f.CashReceived, &f.BankReceived, &f.CashExpenses, &f.BankExpenses,
			&f.PendingCashReceived, &f.PendingBankReceived, &f.PendingCashExpenses, &f.PendingBankExpenses,
			&f.ApprovedCount, &f.PendingCount, &r.counted); err != nil {
			return fmt.Errorf("stream %s rows: %w", table, err)
		}
		r.key.date = domain.DateOf(d)
		if err := send(ctx, out, r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream %s rows: %w", table, postgres.Translate(err))
	}
	return nil
}

func (s *Service) streamCounts(ctx context.Context, org, property *domain.ID, out chan<- countRow) error {
	rows, err := s.pool.Query(ctx, streamCountsSQL, org, property)
	if err != nil {
		return fmt.Errorf("stream cash counts: %w", postgres.Translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			c countRow
			d time.Time
		)
		if err := rows.Scan(&c.key.org, &c.key.property, &d, &c.counted); err != nil {
			return fmt.Errorf("stream cash counts: %w", err)
		}
		c.key.date = domain.DateOf(d)
		if err := send(ctx, out, c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream cash counts: %w", postgres.Translate(err))
	}
	return nil
}
