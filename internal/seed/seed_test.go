package seed_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/reconcile"
	"hmp/internal/seed"
	"hmp/internal/tenancy"
	"hmp/internal/tools"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, &cluster, tools.Migrations()...) }

func seedDB(t *testing.T, cfg seed.Config) (string, seed.Result) {
	t.Helper()
	url := cluster.NewDatabase(t)
	pool, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxConns: 8, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	res, err := seed.Run(context.Background(), pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return url, res
}

// A seeded history is what the write path and the projector would have
// produced: the truth check finds nothing, the seeded users log in, the
// reports show the seeded money, and a started server publishes and
// projects only what is written after the seed.
func TestSeedReconcilesAndServes(t *testing.T) {
	t.Parallel()
	url, res := seedDB(t, seed.Config{Orgs: 6, Days: 40, Density: 3, ChunkOrgs: 2, Workers: 3, MeasureLimit: true, LimitOrgs: 2})
	if res.Rows["orgs"] != 6 || res.Rows["transactions"] == 0 || res.Rows["events"] <= res.Rows["transactions"] ||
		res.Rows["cash_counts"] == 0 || res.Rows["daily_cash_balances"] == 0 || res.Rows["monthly_cash_balances"] == 0 {
		t.Fatalf("rows: %v", res.Rows)
	}
	if res.LimitRowsPerSecond <= 0 || len(res.Accounts) != 6 {
		t.Fatalf("limit %v, accounts %d", res.LimitRowsPerSecond, len(res.Accounts))
	}

	ctx := context.Background()
	pool, err := postgres.Open(ctx, url, postgres.PoolConfig{MaxConns: 8, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ten, err := tenancy.New(pool, time.Now, tenancy.Config{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer ten.Close()
	rec, err := reconcile.NewReconciler(pool, finance.New(pool, ten, time.Now)).Reconcile(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Mismatches != 0 || rec.DaysChecked == 0 || rec.CountsChecked == 0 {
		t.Fatalf("reconcile: %+v", rec)
	}
	// Every kind of history is there.
	var statuses, types int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT status) FROM transactions`).Scan(&statuses); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT event_type) FROM events`).Scan(&types); err != nil {
		t.Fatal(err)
	}
	if statuses != 3 || types < 10 {
		t.Fatalf("%d statuses, %d event types", statuses, types)
	}

	env := apptest.Start(t, cluster, func(c *config.Config) { c.DatabaseURL = url })
	acct := res.Accounts[0]
	var login struct{ AccessToken string }
	env.Must(200, "POST", "/v1/auth/login", "", map[string]any{"email": acct.AdminEmail, "password": res.Password}).JSON(t, &login)
	var mgr struct{ AccessToken string }
	env.Must(200, "POST", "/v1/auth/login", "", map[string]any{"email": acct.ManagerEmail, "password": res.Password}).JSON(t, &mgr)

	prop := acct.PropertyIDs[0]
	today := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02") // the property's zone may be ahead
	start := time.Now().UTC().AddDate(0, 0, -60).Format("2006-01-02")
	path := fmt.Sprintf("/v1/reports/daily-reports?propertyId=%s&startDate=%s&endDate=%s", prop, start, today)
	var before struct {
		Summary struct{ ClosingBalanceCents, TotalReceivedCents int64 }
	}
	env.Must(200, "GET", path, login.AccessToken, nil).JSON(t, &before)
	var want int64
	if err := pool.QueryRow(ctx, `
		SELECT COALESCE(sum(CASE WHEN kind = 'revenue' THEN amount_cents ELSE -amount_cents END), 0)
		FROM transactions WHERE property_id = $1 AND status = 'approved' AND payment_mode = 'cash'`, prop).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if before.Summary.ClosingBalanceCents != want || before.Summary.TotalReceivedCents == 0 {
		t.Fatalf("closing %d, want %d (received %d)", before.Summary.ClosingBalanceCents, want, before.Summary.TotalReceivedCents)
	}

	// A new write goes through the pipeline; the history does not.
	w := env.Must(201, "POST", "/v1/finance/revenues", login.AccessToken, map[string]any{
		"propertyId": prop, "source": "room", "amountCents": 777, "paymentMode": "cash", "occurredAt": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339),
	})
	var after struct {
		Summary struct{ ClosingBalanceCents int64 }
	}
	env.Must(200, "GET", path, login.AccessToken, nil, "X-Consistency-Token", w.Header.Get("X-Consistency-Token")).JSON(t, &after)
	if after.Summary.ClosingBalanceCents != want+777 {
		t.Fatalf("closing after a write %d, want %d", after.Summary.ClosingBalanceCents, want+777)
	}
	client, err := loadtest.NewClient(env.BaseURL, 1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	m, err := client.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := m["hmp_relay_published_total"]; got != 1 {
		t.Fatalf("relay published %v events, want only the new one", got)
	}
	// The seeded chains and the write appended after them verify.
	ver, err := eventstore.Verify(ctx, pool, eventstore.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if len(ver.Breaks) != 0 || ver.Orgs != 6 || ver.Events != total || ver.Unchained != 0 {
		t.Fatalf("verify after seed: %+v (events %d)", ver, total)
	}
}

// The same seed, sizes and clock give the same rows.
func TestSeedDeterministic(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC) // a DST change in Europe
	cfg := seed.Config{Orgs: 3, Days: 10, Seed: 42, Now: func() time.Time { return now }, ChunkOrgs: 1, Workers: 2}
	a, _ := seedDB(t, cfg)
	b, _ := seedDB(t, cfg)
	digest := func(url string) string {
		pool, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxConns: 2, MinConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var parts []string
		for _, q := range []string{
			`SELECT md5(string_agg(t::text, '|' ORDER BY org_id, id)) FROM transactions t`,
			`SELECT md5(string_agg(concat_ws(',', org_id, id, event_type, entity_id, aggregate_version, occurred_at, metadata), '|' ORDER BY org_id, seq)) FROM events`,
			`SELECT md5(string_agg(d::text, '|' ORDER BY org_id, property_id, business_date)) FROM daily_cash_balances d`,
			`SELECT md5(string_agg(concat_ws(',', email, org_id, user_id), '|' ORDER BY email)) FROM user_logins`,
		} {
			var s string
			if err := pool.QueryRow(context.Background(), q).Scan(&s); err != nil {
				t.Fatal(err)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " ")
	}
	if da, db := digest(a), digest(b); da != db {
		t.Fatalf("digests differ:\n%s\n%s", da, db)
	}
}
