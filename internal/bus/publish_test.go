package bus

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"hmp/internal/domain"
)

func gaugeValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == label {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{name=%q}", name, label)
	return 0
}

func anyEvent() domain.Event {
	now := time.Now().UTC().Truncate(time.Microsecond)
	org, prop := domain.NewID(now), domain.NewID(now)
	return domain.Event{ID: domain.NewID(now), Version: domain.EventVersion, Type: domain.RevenueAdded, OrgID: org,
		PropertyID: &prop, UserID: org, EntityType: domain.EntityRevenue, EntityID: domain.NewID(now), AggregateVersion: 1,
		Timestamp: now, Sequence: 1, Metadata: []byte(`{}`)}
}

// Five consecutive failed publishes (the stream is gone) open the breaker:
// the next publish fails at once without reaching the bus. After the open
// period one probe goes through, and its success closes the breaker. The
// state is a metric throughout; StreamEpoch makes the stream again, with a
// new creation time.
func TestPublisherBreaker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := openBus(t, Config{StoreDir: t.TempDir()})
	reg := prometheus.NewRegistry()
	p := NewPublisher(b, PublisherConfig{AckTimeout: 200 * time.Millisecond, BreakerOpen: 100 * time.Millisecond},
		slog.New(slog.DiscardHandler), reg)
	// A second breaker on the same registry shares the metric.
	NewPublisher(b, PublisherConfig{Name: "other"}, slog.New(slog.DiscardHandler), reg)
	before, err := p.StreamEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PublishEvents(ctx, []domain.Event{anyEvent()}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if err := b.js.DeleteStream(ctx, EventsStream); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := p.PublishEvents(ctx, []domain.Event{anyEvent()}); err == nil || errors.Is(err, gobreaker.ErrOpenState) {
			t.Fatalf("publish %d without a stream: %v, want a bus error", i+1, err)
		}
	}
	if _, err := p.PublishEvents(ctx, []domain.Event{anyEvent()}); !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("sixth publish: %v, want the breaker open", err)
	}
	if v := gaugeValue(t, reg, "hmp_breaker_state", "bus_publish"); v != 2 {
		t.Fatalf("breaker state metric %v, want 2 (open)", v)
	}
	if v := gaugeValue(t, reg, "hmp_breaker_state", "other"); v != 0 {
		t.Fatalf("other breaker's state metric %v, want 0", v)
	}
	after, err := p.StreamEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !after.After(before) {
		t.Fatalf("the remade stream's creation time %v is not after the first's %v", after, before)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.State() != gobreaker.StateHalfOpen {
		if time.Now().After(deadline) {
			t.Fatalf("breaker still %v after its open period", p.State())
		}
		time.Sleep(10 * time.Millisecond) // polling the breaker's own clock: nothing to wait on
	}
	// (The new stream may already hold retried copies of the failed
	// publishes: the client retries a publish that found no stream.)
	if seq, err := p.PublishEvents(ctx, []domain.Event{anyEvent()}); err != nil || seq == 0 {
		t.Fatalf("probe publish = %d, %v; want it stored", seq, err)
	}
	if p.State() != gobreaker.StateClosed || gaugeValue(t, reg, "hmp_breaker_state", "bus_publish") != 0 {
		t.Fatalf("after a successful probe the breaker is %v", p.State())
	}
}
