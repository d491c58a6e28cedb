package reconcile_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"hmp/internal/cache"
	"hmp/internal/config"
	"hmp/internal/natstest"
	"hmp/internal/tools"
)

// `hmp reconcile --fix` run from another process, with the servers' bus
// (HMP_NATS_URL), announces the days it corrected: a server that cached a
// drifted day (for an hour) serves the corrected one without a token.
func TestFixFromAnotherProcessInvalidatesServerCache(t *testing.T) {
	t.Parallel()
	natsURL := natstest.StartServer(t)
	w := setup(t, func(c *config.Config) {
		c.NATSURL = natsURL
		c.Cache = cache.Config{ActiveTTL: time.Hour, HistoricalTTL: time.Hour}
	})
	org, prop := w.orgs[0], w.props[0][0]
	path := "/v1/reports/daily-report?propertyId=" + prop + "&date=2026-03-02"
	var want struct{ CashReceivedCents int64 }
	w.env.Must(200, "GET", path+"&includePending=true", org.AdminToken, nil).JSON(t, &want) // no pending rows: the same figures, another key

	// Drift behind the server's back, then let it cache the drifted day.
	if _, err := w.pool.Exec(context.Background(), drifts[0].sql, org.ID, prop); err != nil {
		t.Fatal(err)
	}
	var got struct{ CashReceivedCents int64 }
	for range 2 { // the second read is a hit
		w.env.Must(200, "GET", path, org.AdminToken, nil).JSON(t, &got)
	}
	if got.CashReceivedCents != want.CashReceivedCents+7 {
		t.Fatalf("drifted day reads %d, want %d", got.CashReceivedCents, want.CashReceivedCents+7)
	}

	res, err := tools.Reconcile(context.Background(), config.Config{DatabaseURL: w.env.App.DatabaseURL, NATSURL: natsURL}, slog.New(slog.DiscardHandler), nil, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mismatches != 1 || res.Fixed == nil || res.Fixed.Mismatches != 0 {
		t.Fatalf("fix: %d mismatches, after: %+v", res.Mismatches, res.Fixed)
	}
	// The announcement travels asynchronously; without it the drifted
	// entry would answer for an hour.
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.env.Must(200, "GET", path, org.AdminToken, nil).JSON(t, &got)
		if got.CashReceivedCents == want.CashReceivedCents {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still serves the drifted day (%d, want %d) 10 s after the fix", got.CashReceivedCents, want.CashReceivedCents)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
