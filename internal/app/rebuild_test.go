package app_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/finance"
	"hmp/internal/httpapi/httpapitest"
	"hmp/internal/rebuild"
	"hmp/internal/reconcile"
	"hmp/internal/tenancy"
)

// TestRebuildBesideServing: hmp rebuild repairs drift injected into the
// live projections from the event store, while a client writes and reads
// its own writes back (consistency tokens): every read during the swaps
// is exact, and the cash book reconciles afterwards. (Rebuild's own rules,
// resume and the property scope are internal/rebuild's tests.)
func TestRebuildBesideServing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.Start(t, cluster, smallPool, func(c *config.Config) { c.Cache.Entries = -1 })
	org := env.Signup("Rebuilders")
	admin := org.AdminToken
	drifted := env.Property(admin, "Drifted", "")
	busy := env.Property(admin, "Busy", "")
	other := env.Signup("Bystanders")
	otherProp := env.Property(other.AdminToken, "Calm", "")
	day := func(n int) string { return time.Now().UTC().AddDate(0, 0, -n).Format("2006-01-02") + "T06:00:00Z" }
	var last string
	for i := range 6 {
		r := env.Must(201, "POST", "/v1/finance/revenues", admin, httpapitest.WithKind("revenue", apptest.Txn{PropertyID: drifted, AmountCents: int64(1000 * (i + 1)), PaymentMode: "cash", OccurredAt: day(i % 3)}))
		env.Must(201, "POST", "/v1/finance/expenses", other.AdminToken, httpapitest.WithKind("expense", apptest.Txn{PropertyID: otherProp, AmountCents: 10, PaymentMode: "bank", OccurredAt: day(i % 2)}))
		last = r.Header.Get("X-Consistency-Token")
	}
	report := func(token, prop, date string) int64 {
		var b struct{ ClosingBalanceCents int64 }
		env.Must(200, "GET", "/v1/reports/daily-report?"+url.Values{"propertyId": {prop}, "date": {date}}.Encode(), token, nil,
			"X-Consistency-Token", last).JSON(t, &b)
		return b.ClosingBalanceCents
	}
	todayDate := time.Now().UTC().Format("2006-01-02")
	if got := report(admin, drifted, todayDate); got != 21000 {
		t.Fatalf("closing before drift = %d, want 21000", got)
	}
	// Drift: a wrong amount, a lost monthly rollup, a phantom day.
	for _, sql := range []string{
		`UPDATE daily_cash_balances SET cash_received = cash_received + 999 WHERE property_id = '` + drifted + `' AND business_date = current_date`,
		`DELETE FROM monthly_cash_balances WHERE property_id = '` + drifted + `'`,
		`INSERT INTO daily_cash_balances (org_id, property_id, business_date, cash_received, updated_at) VALUES ('` + org.ID + `', '` + drifted + `', '2024-01-01', 5, now())`,
	} {
		if _, err := env.App.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}

	// A client writes and reads its own writes back while rebuilds run.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Go(func() {
		var sum int64
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r, err := env.Send("POST", "/v1/finance/revenues", admin, httpapitest.WithKind("revenue", apptest.Txn{PropertyID: busy, AmountCents: 100, PaymentMode: "cash", OccurredAt: day(1)}))
			if err != nil || r.Status != 201 {
				errs <- fmt.Errorf("write %d: %v %v", i, r, err)
				return
			}
			sum += 100
			rr, err := env.Send("GET", "/v1/reports/daily-report?"+url.Values{"propertyId": {busy}, "date": {todayDate}}.Encode(), admin, nil,
				"X-Consistency-Token", r.Header.Get("X-Consistency-Token"))
			if err != nil || rr.Status != 200 {
				errs <- fmt.Errorf("read %d: %v %v", i, rr, err)
				return
			}
			var b struct{ ClosingBalanceCents int64 }
			rr.JSON(t, &b)
			if b.ClosingBalanceCents != sum {
				errs <- fmt.Errorf("read %d during rebuilds: closing %d, want %d", i, b.ClosingBalanceCents, sum)
				return
			}
		}
	})
	var first rebuild.Progress
	for i := range 4 {
		p, err := rebuild.Run(ctx, env.App.Pool, rebuild.Config{Run: fmt.Sprintf("run-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = p
		}
		if p.Orgs != 2 {
			t.Fatalf("run %d rebuilt %d organizations, want 2", i, p.Orgs)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if first.ChangedRows < 3 || first.Events < 12 {
		t.Fatalf("first run: %+v; want the 3 drifted rows changed", first)
	}
	t.Logf("first run: %d events, %d rows changed, lock max %s, %.0f events/s (loaded machine)", first.Events, first.ChangedRows, first.LockMax, first.EventsPerSecond())

	if got := report(admin, drifted, todayDate); got != 21000 {
		t.Fatalf("closing after rebuild = %d, want 21000", got)
	}
	ten, err := tenancy.New(env.App.Pool, time.Now, tenancy.Config{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer ten.Close()
	rec, err := reconcile.NewReconciler(env.App.Pool, finance.New(env.App.Pool, ten, time.Now)).Reconcile(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Mismatches != 0 {
		t.Fatalf("reconcile after rebuild: %+v", rec)
	}
}
