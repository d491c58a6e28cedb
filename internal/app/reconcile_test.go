package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"hmp/internal/config"
	"hmp/internal/postgres"
)

// Reconciliation recomputes the cash book from the transactions: it finds
// nothing on a healthy projection, and after a daily and a monthly row are
// corrupted behind the projector's back it lists exactly those figures,
// with the expected and the actual value. Only an ADMIN may run it.
func TestReconciliationDetectsDrift(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Drifting Books")
	a := f.property("Anchor", "UTC")
	b := f.property("Buoy", "Asia/Kolkata")
	_, mgr := f.env.Manager(f.admin, "anchor@drift.test", a)
	f.create(f.admin, "revenue", a, 5000, "cash", "2026-03-02T10:00:00Z")
	f.create(f.admin, "expense", a, 700, "bank", "2026-03-02T11:00:00Z")
	f.create(f.admin, "revenue", a, 800, "cash", "2026-04-10T10:00:00Z")
	f.create(f.admin, "expense", a, 1200, "bank", "2026-04-10T11:00:00Z")
	f.create(mgr, "revenue", a, 333, "cash", "2026-04-11T10:00:00Z") // pending
	f.create(f.admin, "revenue", b, 9000, "bank", "2026-03-02T10:00:00Z")
	f.write(201, "POST", "/v1/reports/cash-counts", f.admin, map[string]any{"propertyId": a, "date": "2026-03-02", "countedClosingCents": 4990})

	type mismatch struct {
		PropertyID, Period, Field string
		Expected, Actual          int64
	}
	details := func(r repReconciliation) []mismatch {
		out := make([]mismatch, len(r.Mismatches))
		for i, d := range r.Mismatches {
			out[i] = mismatch{d.PropertyID, d.Period, d.Field, d.Expected, d.Actual}
		}
		slices.SortFunc(out, func(x, y mismatch) int { return strings.Compare(fmt.Sprint(x), fmt.Sprint(y)) })
		return out
	}

	healthy := repReconcile(f, f.admin, map[string]any{})
	if healthy.MismatchCount != 0 || len(healthy.Mismatches) != 0 {
		t.Fatalf("healthy projection: %+v", healthy)
	}
	// Days with rows: a on March 2, April 10 and 11; b on March 2.
	if healthy.DaysChecked != 4 || healthy.CountsChecked != 1 || healthy.MonthsChecked != 3 {
		t.Fatalf("healthy reconciliation checked %d days, %d counts, %d months; want 4, 1, 3", healthy.DaysChecked, healthy.CountsChecked, healthy.MonthsChecked)
	}

	exec := func(t *testing.T, sql string, args ...any) {
		t.Helper()
		tag, err := f.env.App.Pool.Exec(context.Background(), sql, args...)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v (%d rows)", sql, err, tag.RowsAffected())
		}
	}
	exec(t, `UPDATE daily_cash_balances SET cash_received = cash_received + 7
		WHERE org_id = $1::uuid AND property_id = $2::uuid AND business_date = '2026-03-02'`, f.org.ID, a)
	exec(t, `UPDATE monthly_cash_balances SET bank_expenses = bank_expenses - 3
		WHERE org_id = $1::uuid AND property_id = $2::uuid AND month = '2026-04-01'`, f.org.ID, a)

	want := []mismatch{
		{a, "2026-03-02", "cashReceivedCents", 5000, 5007},
		{a, "2026-04", "bankExpensesCents", 1200, 1197},
	}
	for _, body := range []map[string]any{{}, {"propertyId": a}} {
		got := repReconcile(f, f.admin, body)
		if got.MismatchCount != 2 || !slices.Equal(details(got), want) {
			t.Fatalf("reconciliation of %v = %d mismatches %+v, want %+v", body, got.MismatchCount, details(got), want)
		}
	}
	if got := repReconcile(f, f.admin, map[string]any{"propertyId": b}); got.MismatchCount != 0 || got.DaysChecked != 1 {
		t.Fatalf("reconciliation of the untouched property = %+v", got)
	}
	// The reports read the projection, so the drift shows there.
	if d := f.daily(f.admin, a, "2026-03-02", false); d.CashReceivedCents != 5007 {
		t.Fatalf("corrupted day served as %s", d)
	}

	t.Run("a stray row, a lost count and a lost pending figure", func(t *testing.T) {
		f := f.in(t)
		exec(t, `INSERT INTO daily_cash_balances (org_id, property_id, business_date, cash_expenses, approved_count, updated_at)
			VALUES ($1::uuid, $2::uuid, '2026-05-05', 50, 1, now())`, f.org.ID, b)
		exec(t, `UPDATE daily_cash_balances SET counted_closing = NULL
			WHERE org_id = $1::uuid AND property_id = $2::uuid AND business_date = '2026-03-02'`, f.org.ID, a)
		exec(t, `UPDATE daily_cash_balances SET pending_cash_received = 0
			WHERE org_id = $1::uuid AND property_id = $2::uuid AND business_date = '2026-04-11'`, f.org.ID, a)
		got := repReconcile(f, f.admin, map[string]any{})
		want := append(slices.Clone(want),
			mismatch{a, "2026-03-02", "countedClosingCents", 4990, 0},
			mismatch{a, "2026-04-11", "pendingCashReceivedCents", 333, 0},
			mismatch{b, "2026-05-05", "approvedCount", 0, 1},
			mismatch{b, "2026-05-05", "cashExpensesCents", 0, 50},
		)
		slices.SortFunc(want, func(x, y mismatch) int { return strings.Compare(fmt.Sprint(x), fmt.Sprint(y)) })
		if got.MismatchCount != int64(len(want)) || !slices.Equal(details(got), want) {
			t.Fatalf("reconciliation = %d mismatches\n%+v\nwant\n%+v", got.MismatchCount, details(got), want)
		}
	})

	t.Run("a MANAGER may not reconcile", func(t *testing.T) {
		f := f.in(t)
		repMustProblem(t, f.env.Do("POST", "/v1/reports/reconciliation", mgr, map[string]any{}), 403)
		repMustProblem(t, f.env.Do("POST", "/v1/reports/reconciliation", mgr, map[string]any{"propertyId": a}), 403)
	})

	t.Run("a property of another organization is not found", func(t *testing.T) {
		f := f.in(t)
		other := f.env.Signup("Other Books")
		theirs := f.env.Property(other.AdminToken, "Theirs", "UTC")
		repMustProblem(t, f.env.Do("POST", "/v1/reports/reconciliation", f.admin, map[string]any{"propertyId": theirs}), 404, "body.propertyId")
		repMustProblem(t, f.env.Do("POST", "/v1/reports/reconciliation", f.admin, map[string]any{"propertyId": "not-a-uuid"}), 422, "body.propertyId")
		// Their reconciliation does not see our drift, and our job is not
		// theirs to read.
		r := reconcileJob(t, f.env, other.AdminToken, map[string]any{})
		if r.MismatchCount != 0 || r.DaysChecked != 0 {
			t.Fatalf("another organization's reconciliation = %+v", r)
		}
		ours := reconcileJob(t, f.env, f.admin, map[string]any{})
		repMustProblem(t, f.env.Do("GET", "/v1/reports/reconciliation/"+ours.ID, other.AdminToken, nil), 404)
		repMustProblem(t, f.env.Do("GET", "/v1/reports/reconciliation/"+r.ID, f.admin, nil), 404)
		repMustProblem(t, f.env.Do("GET", "/v1/reports/reconciliation/"+ours.ID, mgr, nil), 403)
	})

	t.Run("no body reconciles the whole organization", func(t *testing.T) {
		f := f.in(t)
		r := reconcileJob(t, f.env, f.admin, nil)
		if r.MismatchCount != 6 {
			t.Fatalf("reconciliation without a body = %+v", r)
		}
	})
}

// Reconciliation streams four sorted sources at once; under a pool too
// small for all of them at the same time (or many reconciliations at
// once) it must still finish rather than wait for itself forever.
func TestReconciliationUnderPoolPressure(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Pool Pressure", func(c *config.Config) { c.Pool = postgres.PoolConfig{MaxConns: 5, MinConns: 1} })
	prop := f.property("Narrow", "UTC")
	day := repParse(t, "2024-06-01")
	for i := range 700 {
		f.create(f.admin, "revenue", prop, int64(i+1), "cash", day.AddDate(0, 0, i).Add(10*time.Hour).Format(time.RFC3339))
	}
	f.drain()
	// Four ADMINs' requests at once: one job runs, the others are handed
	// that same job (one reconciliation at a time per organization).
	const concurrent = 4
	ids := make(chan string, concurrent)
	errs := make(chan error, concurrent)
	for range concurrent {
		go func() {
			r, err := f.env.Send("POST", "/v1/reports/reconciliation", f.admin, map[string]any{})
			switch {
			case err != nil:
				errs <- err
			case r.Status != 202:
				errs <- fmt.Errorf("reconciliation answered %s", r)
			default:
				var job repReconciliation
				if err := json.Unmarshal(r.Body, &job); err != nil {
					errs <- err
					return
				}
				ids <- job.ID
				errs <- nil
			}
		}()
	}
	for range concurrent {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(ids)
	for id := range ids {
		rec := awaitJob(t, f.env, f.admin, id)
		if rec.MismatchCount != 0 || rec.DaysChecked != 700 {
			t.Fatalf("reconciliation = %+v", rec)
		}
	}
}
