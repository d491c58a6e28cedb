package reconcile_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"hmp/internal/app"
	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/reconcile"
	"hmp/internal/tools"
)

// BenchmarkCorrections measures, side by side in one run, drift
// corrections per second written row by row (the baseline profile: one
// statement, one commit each) and batched (phase1: up to 500 per
// statement), on the embedded durable PostgreSQL that `hmp serve` runs
// (fsync on) and on the tests' ephemeral one (fsync off). Every pass
// repairs 2,000 drifted daily rows and their 80 monthly rollups, and
// reconciliation must find nothing afterwards.
//
//	go test ./internal/reconcile -run '^$' -bench Corrections -benchtime 3x
//
// Measured on the quiet 2-core machine (2026-12-04): durable 20,141 vs
// 571 corrections/s (35x), ephemeral 24,219 vs 805 (30x). Here a row-by-row
// correction is cheap (about 1.7 ms: its properties have no events to
// check, its plan is cached); in `hmp loadtest guide` on 1,000 seeded
// organizations it costs about 10 ms and the same batcher reached 119x.
// What bounds the ratio here: a batched correction still costs about
// 40-50 us of execution (its index probes of the truth, the projection
// rows, the upsert and its WAL).
func BenchmarkCorrections(b *testing.B) {
	b.Run("durable", func(b *testing.B) { benchCorrections(b, "") })
	b.Run("ephemeral", func(b *testing.B) { benchCorrections(b, cluster.NewDatabase(b)) })
}

func benchCorrections(b *testing.B, dbURL string) {
	const props, days = 20, 100
	ctx := context.Background()
	cfg := config.Config{HTTPAddr: "127.0.0.1:0", DataDir: b.TempDir(), DatabaseURL: dbURL, BcryptCost: 4, TokenSecret: strings.Repeat("s", 32)}
	cfg.Reconcile.SampleRate, cfg.Reconcile.SweepEvery = -1, -1
	a, err := app.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	env := &apptest.Env{T: b, App: a, BaseURL: "http://" + a.Addr, Client: &http.Client{Timeout: 30 * time.Second}}
	org := env.Signup("Bench Books")
	for range props {
		env.Property(org.AdminToken, "Bench Lodge "+time.Now().Format("150405.000000"), "UTC")
	}
	// The truth and a matching projection, written directly: no events,
	// so every property is settled.
	for _, sql := range []string{
		`INSERT INTO transactions (org_id, id, kind, property_id, source, amount_cents, currency, payment_mode,
			occurred_at, business_date, status, version, created_by, created_at, updated_by, updated_at)
		 SELECT $1, gen_random_uuid(), 'revenue', p.id, 'room', 1000 + d, 'USD', 'cash',
			(date '2026-01-01' + d) + time '10:00', date '2026-01-01' + d, 'approved', 1, $2, now(), $2, now()
		 FROM properties p, generate_series(0, 99) d WHERE p.org_id = $1`,
		`INSERT INTO daily_cash_balances (org_id, property_id, business_date, cash_received, approved_count, updated_at)
		 SELECT org_id, property_id, business_date, sum(amount_cents), count(*), now()
		 FROM transactions WHERE org_id = $1 GROUP BY 1, 2, 3`,
		`INSERT INTO monthly_cash_balances (org_id, property_id, month, cash_received, approved_count, updated_at)
		 SELECT org_id, property_id, date_trunc('month', business_date)::date, sum(amount_cents), count(*), now()
		 FROM transactions WHERE org_id = $1 GROUP BY 1, 2, 3`,
	} {
		args := []any{org.ID}
		if strings.Contains(sql, "$2") {
			args = append(args, org.AdminID)
		}
		if _, err := a.Pool.Exec(ctx, sql, args...); err != nil {
			b.Fatal(err)
		}
	}
	// Statistics, as autovacuum would have gathered them within a minute
	// of these writes: without them the planner picks plans for empty
	// tables and both modes measure those (about 10x slower) instead.
	if _, err := a.Pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	reconcileAll := func() tools.ReconcileResult {
		res, err := tools.Reconcile(ctx, config.Config{DatabaseURL: a.DatabaseURL}, slog.New(slog.DiscardHandler), nil, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	if res := reconcileAll(); res.Mismatches != 0 || res.DaysChecked != props*days {
		b.Fatalf("seeded books: %d days, %d mismatches", res.DaysChecked, res.Mismatches)
	}
	// drift shifts every daily row and monthly rollup and returns the keys.
	drift := func() []reconcile.Key {
		for _, sql := range []string{
			`UPDATE daily_cash_balances SET cash_received = cash_received + 1 WHERE org_id = $1`,
			`UPDATE monthly_cash_balances SET bank_expenses = bank_expenses + 2 WHERE org_id = $1`,
		} {
			if _, err := a.Pool.Exec(ctx, sql, org.ID); err != nil {
				b.Fatal(err)
			}
		}
		if rec := reconcileAll(); rec.Mismatches != props*days+props*4 {
			b.Fatalf("drift: %d mismatches, want %d", rec.Mismatches, props*days+props*4)
		}
		var keys []reconcile.Key
		rows, err := a.Pool.Query(ctx, `SELECT org_id, property_id, business_date FROM daily_cash_balances WHERE org_id = $1`, org.ID)
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k reconcile.Key
			var d time.Time
			if err := rows.Scan(&k.OrgID, &k.PropertyID, &d); err != nil {
				b.Fatal(err)
			}
			k.Date.Year, k.Date.Month, k.Date.Day = d.Date()
			keys = append(keys, k)
		}
		return keys
	}
	correct := func(mode string, keys []reconcile.Key) time.Duration {
		batcher := reconcile.NewCorrectionBatcher(a.Pool, reconcile.Config{Mode: mode}, nil, slog.New(slog.DiscardHandler), time.Now, nil)
		start := time.Now()
		batcher.Enqueue(keys...)
		if err := batcher.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		if res := reconcileAll(); res.Mismatches != 0 {
			b.Fatalf("%s corrections left %d mismatches: %+v", mode, res.Mismatches, res.Details[:min(5, len(res.Details))])
		}
		return took
	}
	var rowTime, batchTime time.Duration
	var n int
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		keys := drift()
		b.StartTimer()
		rowTime += correct(reconcile.ModeRow, keys)
		b.StopTimer()
		keys = drift()
		b.StartTimer()
		batchTime += correct(reconcile.ModeBatch, keys)
		n += len(keys)
	}
	rowRate := float64(n) / rowTime.Seconds()
	batchRate := float64(n) / batchTime.Seconds()
	b.ReportMetric(rowRate, "row_corrections/s")
	b.ReportMetric(batchRate, "batch_corrections/s")
	b.ReportMetric(batchRate/rowRate, "batch/row")
}
