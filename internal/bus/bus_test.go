package bus

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"hmp/internal/domain"
	"hmp/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// implementation is one way of reaching JetStream. open returns a new Bus
// on the same backing store each time it is called; for the embedded
// server the previous Bus must be closed first (it owns the store).
type implementation struct {
	name  string
	setup func(t *testing.T) (open func(t *testing.T) *Bus)
}

func implementations() []implementation {
	return []implementation{
		{"embedded", func(t *testing.T) func(t *testing.T) *Bus {
			dir := t.TempDir()
			return func(t *testing.T) *Bus { return openBus(t, Config{StoreDir: dir}) }
		}},
		{"url", func(t *testing.T) func(t *testing.T) *Bus {
			url := runServer(t)
			return func(t *testing.T) *Bus { return openBus(t, Config{URL: url}) }
		}},
	}
}

func openBus(t *testing.T, cfg Config) *Bus {
	t.Helper()
	b, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// runServer starts a stand-alone NATS server with JetStream on a free
// loopback port, as an external cluster would be, and returns its URL.
func runServer(t *testing.T) string {
	t.Helper()
	return natstest.StartServer(t)
}

func testEvent(org domain.ID, prop *domain.ID, seq int64) domain.Event {
	now := time.Date(2026, 6, 15, 6, 30, 0, 0, time.UTC)
	return domain.Event{ID: domain.NewID(now), Version: domain.EventVersion, Type: domain.RevenueAdded, OrgID: org, PropertyID: prop,
		UserID: domain.NewID(now), EntityType: domain.EntityRevenue, EntityID: domain.NewID(now), AggregateVersion: 1,
		Timestamp: now, Metadata: json.RawMessage(`{"status":"approved"}`), Sequence: seq}
}

func streamMsgs(t *testing.T, b *Bus, stream string) uint64 {
	t.Helper()
	s, err := b.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Msgs
}

// testConsumer is a durable pull consumer on the events stream, as a
// projector would have.
func testConsumer(t *testing.T, b *Bus, durable string) jetstream.Consumer {
	t.Helper()
	c, err := b.js.CreateOrUpdateConsumer(context.Background(), EventsStream, jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	return c
}

func fetch(t *testing.T, c jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	if batch.Error() != nil {
		t.Fatalf("fetch: %v", batch.Error())
	}
	if len(out) != n {
		t.Fatalf("fetched %d messages, want %d", len(out), n)
	}
	return out
}

// TestConformance runs the bus contract against the embedded server and
// against a server reached by URL.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			t.Run("streams are created idempotently", func(t *testing.T) {
				t.Parallel()
				open := impl.setup(t)
				ctx := context.Background()
				b := open(t)
				org := domain.NewID(time.Now())
				if _, err := b.PublishEvents(ctx, []domain.Event{testEvent(org, nil, 1)}); err != nil {
					t.Fatalf("publish: %v", err)
				}
				b.Close()
				b.Close() // safe twice
				b = open(t)
				if err := b.Ping(ctx); err != nil {
					t.Fatalf("ping: %v", err)
				}
				if n := streamMsgs(t, b, EventsStream); n != 1 {
					t.Fatalf("events stream holds %d messages after reopening, want 1", n)
				}
				// A second connection to the same streams while the first is
				// open (only where the server is shared).
				if impl.name == "url" {
					open(t)
				}
				for name, subject := range map[string]string{EventsStream: "hmp.events.>", DeadLetterStream: "hmp.dlq.>"} {
					s, err := b.js.Stream(ctx, name)
					if err != nil {
						t.Fatalf("stream %s: %v", name, err)
					}
					cfg := s.CachedInfo().Config
					if len(cfg.Subjects) != 1 || cfg.Subjects[0] != subject || cfg.Storage != jetstream.FileStorage {
						t.Errorf("stream %s config = %+v", name, cfg)
					}
				}
				s, _ := b.js.Stream(ctx, EventsStream)
				if cfg := s.CachedInfo().Config; cfg.Duplicates != 2*time.Minute || cfg.MaxAge != 7*24*time.Hour {
					t.Errorf("events stream duplicates %s, max age %s", cfg.Duplicates, cfg.MaxAge)
				}
			})

			t.Run("a re-published event is dropped", func(t *testing.T) {
				t.Parallel()
				b := impl.setup(t)(t)
				ctx := context.Background()
				org, prop := domain.NewID(time.Now()), domain.NewID(time.Now())
				first := []domain.Event{testEvent(org, &prop, 1), testEvent(org, nil, 2), testEvent(org, &prop, 3)}
				last, err := b.PublishEvents(ctx, first)
				if err != nil {
					t.Fatalf("publish: %v", err)
				}
				if last != 3 {
					t.Fatalf("last stream sequence = %d, want 3", last)
				}
				again, err := b.PublishEvents(ctx, first[1:2])
				if err != nil {
					t.Fatalf("re-publish: %v", err)
				}
				if again > last {
					t.Fatalf("re-publish got stream sequence %d beyond %d", again, last)
				}
				if n := streamMsgs(t, b, EventsStream); n != 3 {
					t.Fatalf("events stream holds %d messages, want 3", n)
				}
				// Messages carry the event, its id as message id, on its subject.
				msgs := fetch(t, testConsumer(t, b, "reader"), 3)
				for i, m := range msgs {
					var got domain.Event
					if err := json.Unmarshal(m.Data(), &got); err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
					if got.ID != first[i].ID || got.Sequence != first[i].Sequence || got.OrgID != org {
						t.Errorf("message %d = %+v, want event %+v", i, got, first[i])
					}
					if id := m.Headers().Get("Nats-Msg-Id"); id != first[i].ID.String() {
						t.Errorf("message %d id = %q, want %s", i, id, first[i].ID)
					}
					if want := EventSubject(org, first[i].PropertyID); m.Subject() != want {
						t.Errorf("message %d subject = %s, want %s", i, m.Subject(), want)
					}
				}
				if msgs[1].Subject() != "hmp.events."+org.String()+".none" {
					t.Errorf("an event without a property went to %s", msgs[1].Subject())
				}
				// A new event still goes through.
				if last, err = b.PublishEvents(ctx, []domain.Event{testEvent(org, &prop, 4)}); err != nil || last != 4 {
					t.Fatalf("publish after a duplicate = %d, %v; want sequence 4", last, err)
				}
			})

			t.Run("a dead letter keeps the message and the reason", func(t *testing.T) {
				t.Parallel()
				b := impl.setup(t)(t)
				ctx := context.Background()
				org, prop := domain.NewID(time.Now()), domain.NewID(time.Now())
				if _, err := b.PublishEvents(ctx, []domain.Event{testEvent(org, &prop, 1), testEvent(org, &prop, 2)}); err != nil {
					t.Fatalf("publish: %v", err)
				}
				c := testConsumer(t, b, "dead-letterer")
				msgs := fetch(t, c, 2)
				if err := b.DeadLetter(ctx, msgs[0], "dead-letterer", "undecodable event: boom"); err != nil {
					t.Fatalf("dead letter: %v", err)
				}
				if err := msgs[1].DoubleAck(ctx); err != nil {
					t.Fatalf("ack: %v", err)
				}
				dlq, err := b.js.Stream(ctx, DeadLetterStream)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := dlq.GetLastMsgForSubject(ctx, "hmp.dlq.dead-letterer")
				if err != nil {
					t.Fatalf("dead letter not stored: %v", err)
				}
				want := map[string]string{
					HeaderReason: "undecodable event: boom", HeaderSubject: EventSubject(org, &prop),
					HeaderConsumer: "dead-letterer", HeaderStreamSeq: "1", HeaderDeliveries: "1",
				}
				for h, v := range want {
					if got := raw.Header.Get(h); got != v {
						t.Errorf("header %s = %q, want %q", h, got, v)
					}
				}
				if string(raw.Data) != string(msgs[0].Data()) {
					t.Errorf("dead letter body = %s, want the original %s", raw.Data, msgs[0].Data())
				}
				// Terminated: never delivered again, and the ack floor passes it.
				info, err := c.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if info.NumAckPending != 0 || info.NumRedelivered != 0 || info.NumPending != 0 {
					t.Errorf("consumer after dead letter: pending %d, ack pending %d, redelivered %d", info.NumPending, info.NumAckPending, info.NumRedelivered)
				}
				if floor, err := b.AckFloor(ctx, EventsStream, "dead-letterer"); err != nil || floor != 2 {
					t.Errorf("ack floor = %d, %v; want 2", floor, err)
				}
			})

			t.Run("the ack floor advances with contiguous acks", func(t *testing.T) {
				t.Parallel()
				b := impl.setup(t)(t)
				ctx := context.Background()
				org := domain.NewID(time.Now())
				evs := []domain.Event{testEvent(org, nil, 1), testEvent(org, nil, 2), testEvent(org, nil, 3)}
				if _, err := b.PublishEvents(ctx, evs); err != nil {
					t.Fatalf("publish: %v", err)
				}
				if _, err := b.AckFloor(ctx, EventsStream, "floor"); err == nil {
					t.Fatal("ack floor of a missing consumer: no error")
				}
				c := testConsumer(t, b, "floor")
				floor := func() uint64 {
					t.Helper()
					f, err := b.AckFloor(ctx, EventsStream, "floor")
					if err != nil {
						t.Fatalf("ack floor: %v", err)
					}
					return f
				}
				if f := floor(); f != 0 {
					t.Fatalf("ack floor before any ack = %d", f)
				}
				msgs := fetch(t, c, 3)
				// The second ack alone leaves the floor at 0: it waits for the first.
				if err := msgs[1].DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
				if f := floor(); f != 0 {
					t.Fatalf("ack floor with a gap = %d, want 0", f)
				}
				if err := msgs[0].DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
				if f := floor(); f != 2 {
					t.Fatalf("ack floor after 1 and 2 = %d, want 2", f)
				}
				if err := msgs[2].DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
				if f := floor(); f != 3 {
					t.Fatalf("ack floor after all = %d, want 3", f)
				}
			})
		})
	}
}

func TestOpenNeedsAStore(t *testing.T) {
	t.Parallel()
	if _, err := Open(context.Background(), Config{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("open without URL or store dir: no error")
	}
}

func TestEventSubject(t *testing.T) {
	t.Parallel()
	org := domain.NewID(time.Now())
	prop := domain.NewID(time.Now())
	if got, want := EventSubject(org, &prop), "hmp.events."+org.String()+"."+prop.String(); got != want {
		t.Errorf("subject = %s, want %s", got, want)
	}
	if got := EventSubject(org, nil); got != "hmp.events."+org.String()+".none" {
		t.Errorf("subject without property = %s", got)
	}
}
