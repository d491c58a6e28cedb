package app_test

import (
	"context"
	"sync"
	"testing"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/domain"
	"hmp/internal/reports"
)

// The projector tells AfterCommit, after each committed batch, the
// earliest business date it changed per property: a back-dated edit names
// the older of its two dates, a cash count its day; a redelivered batch
// that changed nothing names nothing.
func TestProjectorAfterCommit(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		touched = map[domain.ID]domain.Date{} // earliest per property over all calls
		calls   int
	)
	w := pipeStart(t, func(c *config.Config) {
		c.Projector.AfterCommit = func(_ context.Context, ts []reports.Touched) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			seen := map[domain.ID]bool{}
			for _, x := range ts {
				if seen[x.PropertyID] {
					t.Errorf("property %s twice in one call", x.PropertyID)
				}
				seen[x.PropertyID] = true
				if d, ok := touched[x.PropertyID]; !ok || x.From.Before(d) {
					touched[x.PropertyID] = x.From
				}
			}
		}
	})
	w.drain()
	reset := func() {
		mu.Lock()
		defer mu.Unlock()
		clear(touched)
		calls = 0
	}
	get := func() (map[domain.ID]domain.Date, int) {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[domain.ID]domain.Date, len(touched))
		for k, v := range touched {
			out[k] = v
		}
		return out, calls
	}
	reset()
	p0, err := domain.ParseID(w.props[0])
	if err != nil {
		t.Fatal(err)
	}
	p1, err := domain.ParseID(w.props[1])
	if err != nil {
		t.Fatal(err)
	}
	var r apptest.Row
	if err := w.write(201, "POST", "/v1/finance/revenues", w.org.AdminToken, apptest.Txn{
		PropertyID: w.props[0], Source: "room", AmountCents: 1000, PaymentMode: "cash", OccurredAt: "2026-05-20T09:00:00Z",
	}, &r); err != nil {
		t.Fatal(err)
	}
	w.drain()
	if got, _ := get(); len(got) != 1 || got[p0].String() != "2026-05-20" {
		t.Fatalf("after a create: %v", got)
	}
	reset()
	// Moved back in time and to another property: both properties, the
	// old date for the old one, the new date for the new one.
	if err := w.write(200, "PATCH", "/v1/finance/revenues/"+r.ID, w.org.AdminToken,
		map[string]any{"occurredAt": "2026-05-02T09:00:00Z", "propertyId": w.props[1]}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.write(201, "POST", "/v1/reports/cash-counts", w.org.AdminToken,
		map[string]any{"propertyId": w.props[0], "date": "2026-05-10", "countedClosingCents": 0}, nil); err != nil {
		t.Fatal(err)
	}
	w.drain()
	if got, _ := get(); len(got) != 2 || got[p0].String() != "2026-05-10" || got[p1].String() != "2026-05-02" {
		t.Fatalf("after a move and a count: %v", got)
	}
	reset()
	// A replay changes nothing and names nothing.
	durable := w.env.App.Projector.Config().Durable
	w.env.App.Projector.Stop()
	if err := w.env.App.Bus.DeleteConsumer(context.Background(), "HMP_EVENTS", durable); err != nil {
		t.Fatal(err)
	}
	if err := w.env.App.Projector.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.drain()
	if got, n := get(); len(got) != 0 || n == 0 {
		t.Fatalf("after a replay: %v in %d calls, want calls naming nothing", got, n)
	}
}
