package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"hmp/internal/bus"
	"hmp/internal/config"
)

// deleteEventsStream deletes the events stream, as an operator's mistake
// or a bus that lost its data would, and waits until the relay has made
// it anew.
func (w *pipeWorld) deleteEventsStream() {
	w.t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(w.env.App.Bus.Conn())
	if err != nil {
		w.t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, bus.EventsStream); err != nil {
		w.t.Fatalf("delete stream: %v", err)
	}
	w.until("the stream made anew", func() bool {
		_, err := js.Stream(ctx, bus.EventsStream)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			w.t.Fatalf("stream: %v", err)
		}
		return err == nil
	})
}

// consistentWithin makes report reads with the newest consistency token
// until one answers 200 (a 503 meaning "not yet"), failing after bound;
// it returns how long it took.
func (w *pipeWorld) consistentWithin(bound time.Duration) time.Duration {
	w.t.Helper()
	w.ledger.mu.Lock()
	tok := w.ledger.last
	w.ledger.mu.Unlock()
	start := time.Now()
	for {
		r := w.env.Do("GET", "/v1/reports/monthly-report?year=2026&month=6", w.org.AdminToken, nil, "X-Consistency-Token", tok)
		if r.Status == 200 {
			return time.Since(start)
		}
		if r.Status != 503 {
			w.t.Fatalf("consistent read: %s", r)
		}
		if time.Since(start) > bound {
			w.t.Fatalf("consistent reads still answer 503 after %s", bound)
		}
	}
}

// The events stream deleted under a running HMP while PostgreSQL keeps
// the outbox: the stream's sequences start over. The relay notices the new
// stream, re-publishes from the outbox what the projector had not applied
// (events that were only in the old stream), and consistent reads answer
// again within a bound; the reports are exact and nothing is applied twice.
func TestPipelineStreamRecreated(t *testing.T) {
	t.Parallel()
	w := pipeStart(t, func(c *config.Config) {
		c.Relay.StreamCheck = 50 * time.Millisecond
		c.ConsistencyTimeout = time.Second
	})
	ctx := context.Background()
	w.history(30, 51)
	w.drain()
	w.mustMatchLedger()

	// Events that reached the old stream but not the projection are lost
	// with it: only the outbox still has them.
	w.env.App.Projector.Stop()
	w.history(20, 52)
	w.published()
	w.deleteEventsStream()
	if err := w.env.App.Projector.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.history(10, 53)
	took := w.consistentWithin(30 * time.Second)
	t.Logf("consistent reads answered %s after the writes on the new stream", took)
	w.drain()
	w.mustMatchLedger()

	// Deleted again while the projector runs, with writes in between.
	w.history(10, 54)
	w.deleteEventsStream()
	w.history(10, 55)
	w.consistentWithin(30 * time.Second)
	w.drain()
	w.mustMatchLedger()
	w.mustReconcile()
	if n, events := w.appliedRecords(), w.eventCount(); n != events {
		t.Fatalf("applied records = %d, want one per event (%d)", n, events)
	}
	if n := strings.Count(w.env.Logs.String(), "msg=relay_stream_reset"); n != 2 {
		t.Fatalf("relay logged %d stream resets, want 2", n)
	}
}
