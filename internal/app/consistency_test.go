package app_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"hmp/internal/config"
)

// Read-your-writes: a report read presenting a write's consistency token
// reflects that write. While the relay is stopped the write cannot reach
// the projection, so the read answers 503 with Retry-After after the
// (here shortened) wait instead of stale data; once the relay runs again
// the same read answers 200 with the write in it.
func TestConsistencyTokenReadYourWrites(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Consistent Reads", func(c *config.Config) { c.ConsistencyTimeout = 300 * time.Millisecond })
	prop := f.property("Mirror", "UTC")
	// patient reads with a token, taking the short wait's 503 for what it
	// says (retry) a bounded number of times: on a loaded machine the
	// pipeline may need more than 300 ms.
	patient := func(path, token string) repDay {
		t.Helper()
		for range 100 {
			r := f.env.Do("GET", path, f.admin, nil, "X-Consistency-Token", token)
			if r.Status == 503 && r.Header.Get("Retry-After") != "" {
				continue
			}
			if r.Status != 200 {
				t.Fatalf("GET %s: %s", path, r)
			}
			var d repDay
			r.JSON(t, &d)
			return d
		}
		t.Fatalf("GET %s: still 503 after 100 tries", path)
		return repDay{}
	}
	f.create(f.admin, "revenue", prop, 1000, "cash", "2026-05-01T10:00:00Z")
	first := repQuery("/v1/reports/daily-report", "propertyId", prop, "date", "2026-05-01")
	if d := patient(first, f.last); d.ClosingBalanceCents != 1000 {
		t.Fatalf("first write not reflected: %s", d)
	}

	f.env.App.Relay.Stop()
	f.create(f.admin, "revenue", prop, 250, "cash", "2026-05-01T11:00:00Z")
	token := f.last
	reads := []string{
		repQuery("/v1/reports/daily-report", "propertyId", prop, "date", "2026-05-01"),
		repQuery("/v1/reports/daily-reports", "propertyId", prop, "startDate", "2026-05-01", "endDate", "2026-05-02"),
		repQuery("/v1/reports/monthly-report", "propertyId", prop, "year", "2026", "month", "5"),
		repQuery("/v1/reports/monthly-report", "year", "2026", "month", "5"),
		repQuery("/v1/reports/yearly-summary", "propertyId", prop, "year", "2026"),
	}
	for _, path := range reads {
		started := time.Now()
		r := f.env.Do("GET", path, f.admin, nil, "X-Consistency-Token", token)
		repMustProblem(t, r, 503)
		ra := r.Header.Get("Retry-After")
		if secs, err := strconv.Atoi(ra); err != nil || secs < 1 {
			t.Fatalf("GET %s: Retry-After %q, want a number of seconds", path, ra)
		}
		if waited := time.Since(started); waited < 300*time.Millisecond {
			t.Fatalf("GET %s answered 503 after %s, before the consistency timeout", path, waited)
		}
	}
	// Without a token the read is served, from the projection as it is.
	var stale repDay
	f.env.Must(200, "GET", reads[0], f.admin, nil).JSON(t, &stale)
	if stale.ClosingBalanceCents != 1000 {
		t.Fatalf("with the relay stopped the projection cannot have the write: %s", stale)
	}

	applied := f.env.App.Projector.Applied()
	if err := f.env.App.Relay.Start(context.Background()); err != nil {
		t.Fatalf("restart relay: %v", err)
	}
	select {
	case <-applied:
	case <-time.After(30 * time.Second):
		t.Fatal("the projector applied nothing within 30 s of the relay's restart")
	}
	d := patient(reads[0], token)
	if d.CashReceivedCents != 1250 || d.ClosingBalanceCents != 1250 || d.TransactionCount != 2 {
		t.Fatalf("after the relay's restart = %s, want the second write reflected", d)
	}
	for _, path := range reads[1:] {
		patient(path, token)
	}
}

// A token presented by another user of the same organization works too:
// it is a position in the write order, not a personal receipt.
func TestConsistencyTokenSharedInOrganization(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Shared Tokens")
	prop := f.property("Shared", "UTC")
	_, mgr := f.env.Manager(f.admin, "shared@tokens.test", prop)
	f.create(mgr, "expense", prop, 420, "cash", "2026-05-03T10:00:00Z")
	if d := f.daily(f.admin, prop, "2026-05-03", true); d.CashExpensesCents != 420 || d.ClosingBalanceCents != -420 {
		t.Fatalf("the manager's write read by the admin with the manager's token = %s", d)
	}
	// A token of a write that changed nothing is a valid token as well.
	var row struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	f.env.Must(200, "GET", "/v1/finance/expenses?limit=1", f.admin, nil).JSON(t, &row)
	f.write(200, "PATCH", "/v1/finance/expenses/"+row.Items[0].ID, mgr, map[string]any{"amountCents": 420})
	if d := f.daily(mgr, prop, "2026-05-03", true); d.CashExpensesCents != 420 {
		t.Fatalf("after a no-op edit = %s", d)
	}
}

// A token the API did not hand out is bad input on every report read,
// located at the header.
func TestConsistencyTokenMalformed(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Bad Tokens")
	prop := f.property("Bad", "UTC")
	reads := []string{
		repQuery("/v1/reports/daily-report", "propertyId", prop, "date", "2026-05-01"),
		repQuery("/v1/reports/daily-reports", "propertyId", prop, "startDate", "2026-05-01", "endDate", "2026-05-02"),
		repQuery("/v1/reports/monthly-report", "year", "2026", "month", "5"),
		repQuery("/v1/reports/yearly-summary", "year", "2026"),
	}
	for _, token := range []string{"garbage", "c1.", "c1.0", "c1.-5", "c1.abc", "c2.17", "c1.99999999999999999999", strings.Repeat("c1.1", 20)} {
		for _, path := range reads {
			r := f.env.Do("GET", path, f.admin, nil, "X-Consistency-Token", token)
			if r.Status < 400 || r.Status >= 500 {
				t.Fatalf("GET %s with token %q: %s, want a 4xx", path, token, r)
			}
			repMustProblem(t, r, r.Status, "header.X-Consistency-Token")
		}
	}
}
