package eventstore

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"hmp/internal/bus"
	"hmp/internal/domain"
)

// lostAcks publishes to the bus (the stream stores the events) but never
// returns the acknowledgement, as when a PubAck is lost on a cluster: it
// blocks until its context is done.
type lostAcks struct {
	bus    *bus.Bus
	called chan struct{} // closed at the first call
}

func (l *lostAcks) PublishEvents(ctx context.Context, events []domain.Event) (uint64, error) {
	select {
	case <-l.called:
	default:
		close(l.called)
	}
	if _, err := l.bus.PublishEvents(ctx, events); err != nil {
		return 0, err
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

// streamEvents returns the events the stream holds, in stream order.
func streamEvents(t *testing.T, bs *bus.Bus) []domain.Event {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(bs.Conn())
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []domain.Event
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		var ev domain.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		out = append(out, ev)
	}
	return out
}

// A leader whose publishes are never acknowledged times out each publish,
// and after the stall timeout gives up leadership (its connection, and so
// the lock, with it); a standby takes over and publishes everything. The
// stream holds every event exactly once: the copies the stalled leader got
// stored are dropped as duplicates.
func TestRelayStalledLeaderGivesUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bs := openBus(t)
	want := b.commitPairs(t, 4)
	stuck := &lostAcks{bus: bs, called: make(chan struct{})}
	// The stalled leader must not win the lock back at once: it retries
	// leadership only after an hour.
	r1 := b.startRelay(t, stuck, RelayConfig{BatchSize: 3, PublishTimeout: 50 * time.Millisecond,
		StallTimeout: 300 * time.Millisecond, LeaderRetry: time.Hour})
	select {
	case <-stuck.called:
	case <-time.After(20 * time.Second):
		t.Fatal("the first relay never published")
	}
	r2 := b.startRelay(t, bus.NewPublisher(bs, bus.PublisherConfig{}, slog.New(slog.DiscardHandler), nil), RelayConfig{BatchSize: 3})
	waitCycles(t, r2, "the standby publishing every event", func() bool { return b.state(t).streamSeq >= int64(len(want)) })
	if n := metricValue(t, r1.giveUps); n != 1 {
		t.Errorf("the stalled leader gave up %v times, want 1", n)
	}
	if n := metricValue(t, r1.leader); n != 0 {
		t.Errorf("the stalled relay still says it leads")
	}
	more := b.event(domain.NewID(time.Now()), 1)
	b.commit(t, more)
	want = append(want, more)
	waitCycles(t, r2, "the new leader publishing a later event", func() bool { return b.state(t).streamSeq >= int64(len(want)) })
	mustPublishedOnce(t, streamEvents(t, bs), want)
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}
