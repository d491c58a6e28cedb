// Package reconcile checks the cash book projection against the truth
// recomputed from the transactions and repairs drift: reconciliation (on
// demand, as a background job), the drift detectors (sampled reads, a
// periodic sweep) and the correction batcher that writes the repairs. It
// sits between finance (the truth) and reports (the projection) so that
// neither imports the other.
package reconcile

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// Truth streams what the transactions add up to per property day, in
// (organization, property, date) order; finance.Service is one.
type Truth interface {
	StreamDayTotals(ctx context.Context, org, property *domain.ID, fn func(domain.DayFlows) error) error
}

// Flows is the day (or month) total both sides are compared by.
type Flows = domain.Flows

// Key names one property's business date: a daily row, and through its
// month the monthly rollup.
type Key struct {
	OrgID, PropertyID domain.ID
	Date              domain.Date
}

// Compare orders keys by organization, property and date.
func (k Key) Compare(o Key) int {
	if c := slices.Compare(k.OrgID[:], o.OrgID[:]); c != 0 {
		return c
	}
	if c := slices.Compare(k.PropertyID[:], o.PropertyID[:]); c != 0 {
		return c
	}
	return k.Date.Compare(o.Date)
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
	// Date is the day, or the first day of the month, the figure belongs
	// to: the key a correction of it takes.
	Date domain.Date `json:"-"`
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
	pool  *pgxpool.Pool
	truth Truth
	turn  chan struct{} // holds a token while a reconciliation runs
}

// NewReconciler returns a Reconciler over the projection in pool.
func NewReconciler(pool *pgxpool.Pool, truth Truth) *Reconciler {
	return &Reconciler{pool: pool, truth: truth, turn: make(chan struct{}, 1)}
}

type projDay struct {
	key     Key
	flows   Flows
	counted *int64
}

type countRow struct {
	key     Key
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
	return r.Each(ctx, org, property, nil)
}

// Each is Reconcile calling found (when not nil) with every mismatch, not
// only the first MaxMismatchDetails: the corrections of `hmp reconcile
// --fix` and of the sweep come from it. found runs on the merging
// goroutine and must not block for long.
func (r *Reconciler) Each(ctx context.Context, org, property *domain.ID, found func(Mismatch)) (Reconciliation, error) {
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
		return r.truth.StreamDayTotals(ctx, org, property, func(t domain.DayFlows) error {
			return send(ctx, truth, projDay{key: Key{t.OrgID, t.PropertyID, t.Date}, flows: t.Flows})
		})
	})
	g.Go(func() error { defer close(days); return r.streamRows(ctx, "daily", org, property, days) })
	g.Go(func() error { defer close(months); return r.streamRows(ctx, "monthly", org, property, months) })
	g.Go(func() error { defer close(counts); return r.streamCounts(ctx, org, property, counts) })

	var res Reconciliation
	g.Go(func() error {
		res = merge(truth, days, counts, months, found)
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

// merge walks the four sorted streams together: each key of the daily
// truth, the daily rows and the cash counts is compared as a day, and the
// months as the days pass by (see merger).
func merge(truth, days <-chan projDay, counts <-chan countRow, months <-chan projDay, found func(Mismatch)) Reconciliation {
	m := &merger{res: Reconciliation{Details: []Mismatch{}}, found: found, months: months}
	m.mHead, m.mOK = <-months
	tHead, tOK := <-truth
	dHead, dOK := <-days
	cHead, cOK := <-counts
	for tOK || dOK || cOK {
		k := smallest([]bool{tOK, dOK, cOK}, []Key{tHead.key, dHead.key, cHead.key})
		var want, got Flows
		var counted, truthCount *int64
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
			m.res.CountsChecked++
			cHead, cOK = <-counts
		}
		m.res.DaysChecked++
		m.compare(k, k.Date.String(), want, got)
		m.compareCount(k, truthCount, counted)
		m.addDay(k, want)
	}
	m.flushMonth()
	m.checkMonthsBefore(nil) // monthly rows beyond the last truth month
	return m.res
}

// smallest returns the smallest of the keys whose ok is true (one is).
func smallest(ok []bool, keys []Key) Key {
	var k Key
	first := true
	for i := range keys {
		if ok[i] && (first || keys[i].Compare(k) < 0) {
			k, first = keys[i], false
		}
	}
	return k
}

// merger holds what merge has found so far and its place in the monthly
// rows. Monthly truth is summed from the daily truth as it streams by (it
// is sorted, so a month's days are contiguous) and compared with the
// monthly rows when the month is complete.
type merger struct {
	res   Reconciliation
	found func(Mismatch)

	months <-chan projDay
	mHead  projDay // the next monthly row, while mOK
	mOK    bool

	curMonth  Key   // the month being summed, while haveMonth
	monthSum  Flows // its truth so far
	haveMonth bool
}

// report counts a mismatch, keeps its details (up to
// MaxMismatchDetails) and passes it to found.
func (m *merger) report(k Key, period, field string, want, got int64) {
	mm := Mismatch{OrgID: k.OrgID, PropertyID: k.PropertyID, Period: period, Field: field, Expected: want, Actual: got, Date: k.Date}
	m.res.Mismatches++
	if len(m.res.Details) < MaxMismatchDetails {
		m.res.Details = append(m.res.Details, mm)
	}
	if m.found != nil {
		m.found(mm)
	}
}

// compare reports each flow of a period that differs.
func (m *merger) compare(k Key, period string, want, got Flows) {
	names := [...]string{"cashReceivedCents", "bankReceivedCents", "cashExpensesCents", "bankExpensesCents",
		"pendingCashReceivedCents", "pendingBankReceivedCents", "pendingCashExpensesCents", "pendingBankExpensesCents",
		"approvedCount", "pendingCount"}
	w := [...]int64{want.CashReceived, want.BankReceived, want.CashExpenses, want.BankExpenses, want.PendingCashReceived,
		want.PendingBankReceived, want.PendingCashExpenses, want.PendingBankExpenses, want.ApprovedCount, want.PendingCount}
	g := [...]int64{got.CashReceived, got.BankReceived, got.CashExpenses, got.BankExpenses, got.PendingCashReceived,
		got.PendingBankReceived, got.PendingCashExpenses, got.PendingBankExpenses, got.ApprovedCount, got.PendingCount}
	for i := range names {
		if w[i] != g[i] {
			m.report(k, period, names[i], w[i], g[i])
		}
	}
}

// compareCount reports a day whose counted closing differs from the
// newest cash count (nil: none).
func (m *merger) compareCount(k Key, truthCount, counted *int64) {
	switch {
	case truthCount != nil && counted == nil:
		m.report(k, k.Date.String(), "countedClosingCents", *truthCount, 0)
	case truthCount == nil && counted != nil:
		m.report(k, k.Date.String(), "countedClosingCents", 0, *counted)
	case truthCount != nil && *truthCount != *counted:
		m.report(k, k.Date.String(), "countedClosingCents", *truthCount, *counted)
	}
}

// addDay adds a day's truth to its month, checking the month before when
// this day starts another.
func (m *merger) addDay(k Key, want Flows) {
	if want.IsZero() {
		return
	}
	mk := Key{k.OrgID, k.PropertyID, k.Date.MonthStart()}
	if m.haveMonth && mk != m.curMonth {
		m.flushMonth()
	}
	m.curMonth, m.haveMonth = mk, true
	m.monthSum.Add(want, 1)
}

// flushMonth checks the month being summed, if any, and starts afresh.
func (m *merger) flushMonth() {
	if m.haveMonth {
		m.checkMonth(m.curMonth, m.monthSum)
	}
	m.haveMonth, m.monthSum = false, Flows{}
}

// checkMonth compares month k's truth with its monthly row, after the
// monthly rows before it, which have no truth.
func (m *merger) checkMonth(k Key, want Flows) {
	m.checkMonthsBefore(&k)
	m.res.MonthsChecked++
	if m.mOK && m.mHead.key.Compare(k) == 0 {
		m.compare(k, monthLabel(k.Date), want, m.mHead.flows)
		m.mHead, m.mOK = <-m.months
		return
	}
	m.compare(k, monthLabel(k.Date), want, Flows{})
}

// checkMonthsBefore checks the monthly rows before month k (nil: all
// that are left) as months without truth.
func (m *merger) checkMonthsBefore(k *Key) {
	for m.mOK && (k == nil || m.mHead.key.Compare(*k) < 0) {
		m.res.MonthsChecked++
		m.compare(m.mHead.key, monthLabel(m.mHead.key.Date), Flows{}, m.mHead.flows)
		m.mHead, m.mOK = <-m.months
	}
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

func (r *Reconciler) streamRows(ctx context.Context, table string, org, property *domain.ID, out chan<- projDay) error {
	sql := streamDailySQL
	if table == "monthly" {
		sql = streamMonthlySQL
	}
	rows, err := r.pool.Query(ctx, sql, org, property)
	if err != nil {
		return fmt.Errorf("stream %s rows: %w", table, postgres.Translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p projDay
			d time.Time
			f = &p.flows
		)
		if err := rows.Scan(&p.key.OrgID, &p.key.PropertyID, &d, &f.CashReceived, &f.BankReceived, &f.CashExpenses, &f.BankExpenses,
			&f.PendingCashReceived, &f.PendingBankReceived, &f.PendingCashExpenses, &f.PendingBankExpenses,
			&f.ApprovedCount, &f.PendingCount, &p.counted); err != nil {
			return fmt.Errorf("stream %s rows: %w", table, err)
		}
		p.key.Date = domain.DateOf(d)
		if err := send(ctx, out, p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream %s rows: %w", table, postgres.Translate(err))
	}
	return nil
}

func (r *Reconciler) streamCounts(ctx context.Context, org, property *domain.ID, out chan<- countRow) error {
	rows, err := r.pool.Query(ctx, streamCountsSQL, org, property)
	if err != nil {
		return fmt.Errorf("stream cash counts: %w", postgres.Translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			c countRow
			d time.Time
		)
		if err := rows.Scan(&c.key.OrgID, &c.key.PropertyID, &d, &c.counted); err != nil {
			return fmt.Errorf("stream cash counts: %w", err)
		}
		c.key.Date = domain.DateOf(d)
		if err := send(ctx, out, c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream cash counts: %w", postgres.Translate(err))
	}
	return nil
}
