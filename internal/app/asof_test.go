package app_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/httpapi/httpapitest"
)

// TestDailyReportAsOf: a daily report with asOf answers what it said at
// that moment: a back-dated edit and a back-dated row written later do
// not show, while the report without asOf has them. Reads past the
// snapshot interval store snapshots and answer the same from them. A bad
// asOf is 422 naming query.asOf.
func TestDailyReportAsOf(t *testing.T) {
	t.Parallel()
	clock := &apptest.Clock{}
	clock.Set(baseTime)
	env := apptest.Start(t, cluster, apptest.WithClock(clock), smallPool, func(c *config.Config) { c.SnapshotEvery = 3 })
	org := env.Signup("Point In Time")
	admin := org.AdminToken
	prop := env.Property(admin, "Harbour", "")
	other := env.Property(admin, "Elsewhere", "")
	yesterday := "2026-06-14T04:30:00Z"
	twoDaysAgo := "2026-06-13T04:30:00Z"

	var tok string // the last write's: live reads reflect it
	report := func(asOf string, pending bool) asOfDay {
		t.Helper()
		q := url.Values{"propertyId": {prop}, "date": {today}}
		if asOf != "" {
			q.Set("asOf", asOf)
		}
		if pending {
			q.Set("includePending", "true")
		}
		var b asOfDay
		env.Must(200, "GET", "/v1/reports/daily-report?"+q.Encode(), admin, nil, "X-Consistency-Token", tok).JSON(t, &b)
		return b
	}
	before := clock.Now().Add(-time.Second).Format(time.RFC3339Nano)

	clock.Advance(time.Minute)
	rev := env.Revenue(admin, apptest.Txn{PropertyID: prop, AmountCents: 1000, PaymentMode: "cash", OccurredAt: yesterday})
	env.Revenue(admin, apptest.Txn{PropertyID: prop, AmountCents: 700, PaymentMode: "cash", OccurredAt: morning})
	env.Expense(admin, apptest.Txn{PropertyID: prop, AmountCents: 200, PaymentMode: "bank", OccurredAt: morning})
	moved := env.Revenue(admin, apptest.Txn{PropertyID: prop, AmountCents: 50, PaymentMode: "cash", OccurredAt: yesterday})
	env.Must(201, "POST", "/v1/reports/cash-counts", admin, map[string]any{"propertyId": prop, "date": today, "countedClosingCents": 1690})
	clock.Advance(time.Minute)
	t1 := clock.Now().Format(time.RFC3339Nano)

	// Later: a back-dated edit, a back-dated row, a row moved away, and a
	// manager's pending row.
	clock.Advance(time.Minute)
	env.Must(200, "PATCH", "/v1/finance/revenues/"+rev.ID, admin, map[string]any{"amountCents": 3000})
	env.Revenue(admin, apptest.Txn{PropertyID: prop, AmountCents: 500, PaymentMode: "cash", OccurredAt: twoDaysAgo})
	env.Must(200, "PATCH", "/v1/finance/revenues/"+moved.ID, admin, map[string]any{"propertyId": other})
	_, mgr := env.Manager(admin, "pit@example.test", prop)
	tok = env.Must(201, "POST", "/v1/finance/revenues", mgr, httpapitest.WithKind("revenue", apptest.Txn{PropertyID: prop, AmountCents: 40, PaymentMode: "cash", OccurredAt: twoDaysAgo})).Header.Get("X-Consistency-Token")

	wantT1 := asOfDay{OpeningBalanceCents: 1050, CashReceivedCents: 700, BankExpensesCents: 200, ClosingBalanceCents: 1750}
	wantNow := asOfDay{OpeningBalanceCents: 3500, CashReceivedCents: 700, BankExpensesCents: 200, ClosingBalanceCents: 4200}
	check := func(name string, got, want asOfDay) {
		t.Helper()
		if got.OpeningBalanceCents != want.OpeningBalanceCents || got.CashReceivedCents != want.CashReceivedCents ||
			got.BankExpensesCents != want.BankExpensesCents || got.ClosingBalanceCents != want.ClosingBalanceCents {
			t.Fatalf("%s: got %+v, want %+v", name, got, want)
		}
	}
	for round := range 2 { // the second round starts from the stored snapshots
		check("as of t1", report(t1, false), wantT1)
		if got := report(t1, false); got.CountedClosingCents == nil || *got.CountedClosingCents != 1690 {
			t.Fatalf("round %d: counted closing as of t1 = %v", round, got.CountedClosingCents)
		}
		check("as of before anything", report(before, false), asOfDay{})
		check("as of now", report(clock.Now().Format(time.RFC3339Nano), false), wantNow)
		if got := report(clock.Now().Format(time.RFC3339Nano), true); got.OpeningBalanceCents != 3540 {
			t.Fatalf("as of now with pending: opening %d, want 3540", got.OpeningBalanceCents)
		}
	}
	check("live", report("", false), wantNow)
	// daily-reports takes asOf too.
	var rng struct {
		Reports []struct{ CashReceivedCents, ClosingBalanceCents int64 }
		Summary struct{ OpeningBalanceCents, ClosingBalanceCents int64 }
	}
	env.Must(200, "GET", "/v1/reports/daily-reports?"+url.Values{"propertyId": {prop}, "startDate": {"2026-06-13"}, "endDate": {today}, "asOf": {t1}}.Encode(),
		admin, nil).JSON(t, &rng)
	if len(rng.Reports) != 3 || rng.Reports[0].CashReceivedCents != 0 || rng.Reports[1].CashReceivedCents != 1050 ||
		rng.Summary.OpeningBalanceCents != 0 || rng.Summary.ClosingBalanceCents != 1750 {
		t.Fatalf("daily-reports as of t1: %+v", rng)
	}
	// monthly-report too, over every property: the row moved to the
	// other property later is still on the first at t1.
	month := func(asOf string) (m struct{ ClosingBalanceCents, TotalCashReceivedCents int64 }) {
		t.Helper()
		q := url.Values{"year": {"2026"}, "month": {"6"}}
		if asOf != "" {
			q.Set("asOf", asOf)
		}
		env.Must(200, "GET", "/v1/reports/monthly-report?"+q.Encode(), admin, nil, "X-Consistency-Token", tok).JSON(t, &m)
		return m
	}
	if m := month(t1); m.ClosingBalanceCents != 1750 || m.TotalCashReceivedCents != 1750 {
		t.Fatalf("monthly as of t1: %+v, want closing and cash in 1750", m)
	}
	if m := month(clock.Now().Format(time.RFC3339Nano)); m != month("") || m.ClosingBalanceCents != 4250 {
		t.Fatalf("monthly as of now %+v, live %+v, want closing 4250", m, month(""))
	}
	mustProblem(t, env.Do("GET", "/v1/reports/daily-reports?"+url.Values{"propertyId": {prop}, "startDate": {"2026-06-13"}, "endDate": {today}, "asOf": {"soon"}}.Encode(), admin, nil), 422)
	var snaps int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM balance_snapshots`).Scan(&snaps); err != nil {
		t.Fatal(err)
	}
	if snaps == 0 {
		t.Fatal("no balance snapshot stored")
	}

	for _, bad := range []string{"yesterday", "2026-06-15", clock.Now().Add(time.Hour).Format(time.RFC3339)} {
		p := mustProblem(t, env.Do("GET", "/v1/reports/daily-report?"+url.Values{"propertyId": {prop}, "date": {today}, "asOf": {bad}}.Encode(), admin, nil), 422)
		if locs := p.locations(); len(locs) != 1 || locs[0] != "query.asOf" {
			t.Fatalf("asOf %q: locations %v", bad, locs)
		}
	}
}

type asOfDay struct {
	OpeningBalanceCents int64  `json:"openingBalanceCents"`
	CashReceivedCents   int64  `json:"cashReceivedCents"`
	BankExpensesCents   int64  `json:"bankExpensesCents"`
	ClosingBalanceCents int64  `json:"closingBalanceCents"`
	CountedClosingCents *int64 `json:"countedClosingCents"`
}
