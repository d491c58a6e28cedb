package bus

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/domain"
	"hmp/internal/natstest"
)

// TestReplicatedCluster: on a three-node JetStream cluster the streams
// and the durable consumer take three replicas; stopping the node that
// leads the events stream in the middle of a load loses nothing that was
// acknowledged: every event whose publish was acknowledged is delivered
// to the consumer, which keeps going on the remaining two nodes.
func TestReplicatedCluster(t *testing.T) {
	t.Parallel()
	cl := natstest.Start(t, 3)
	b := openBus(t, Config{URL: cl.URL, Replicas: 3})
	ctx := context.Background()
	for _, name := range []string{EventsStream, DeadLetterStream} {
		s, err := b.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: replicas %d, cluster %+v; want 3 (a leader and 2 followers)", name, info.Config.Replicas, info.Cluster)
		}
	}

	var (
		mu       sync.Mutex
		received = map[string]int{}
		got      = make(chan struct{}, 1)
	)
	handler := func(_ context.Context, batch []*Message) []error {
		mu.Lock()
		for _, m := range batch {
			var ev domain.Event
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Errorf("undecodable event: %v", err)
			}
			received[ev.ID.String()]++
		}
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
		return nil
	}
	c := NewConsumer(b, ConsumerConfig{Durable: "cluster-test", BatchSize: 20, Workers: 2, AckWait: 5 * time.Second},
		handler, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	cons, err := b.js.Consumer(ctx, EventsStream, "cluster-test")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(ctx); err != nil || info.Config.Replicas != 3 {
		t.Fatalf("consumer replicas: %+v, %v; want 3", info, err)
	}

	// Publish in small batches; halfway, stop the stream's leader.
	org, prop := domain.NewID(time.Now()), domain.NewID(time.Now())
	acked := map[string]bool{}
	const batches = 60
	failed := 0
	for i := range batches {
		if i == batches/2 {
			cl.Stop(leaderIndex(t, b, cl))
		}
		events := make([]domain.Event, 5)
		for j := range events {
			events[j] = testEvent(org, &prop, int64(i*5+j))
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := b.PublishEvents(pctx, events)
		cancel()
		if err != nil {
			failed++ // not acknowledged: the relay would publish it again
			continue
		}
		for _, ev := range events {
			acked[ev.ID.String()] = true
		}
	}
	if len(acked) < batches*5/2 {
		t.Fatalf("only %d of %d events acknowledged (%d batches failed)", len(acked), batches*5, failed)
	}
	deadline := time.After(60 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for id := range acked {
			if received[id] == 0 {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		select {
		case <-got:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d acknowledged events never delivered after the leader stopped", missing, len(acked))
		}
	}
	t.Logf("%d events acknowledged, %d batches refused during the fail-over, all delivered", len(acked), failed)
}

// leaderIndex returns the index of the node leading the events stream.
func leaderIndex(t *testing.T, b *Bus, cl *natstest.Cluster) int {
	t.Helper()
	s, err := b.js.Stream(context.Background(), EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %v", err)
	}
	for i := range cl.Size() {
		if info.Cluster.Leader == natstest.NodeName(i) {
			return i
		}
	}
	t.Fatalf("leader %q is none of the nodes", info.Cluster.Leader)
	return -1
}
