package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestConsumer: what a Handler's answer does to a message. A transient
// failure is redelivered, with backoff, however often (never
// dead-lettered); a poison message is dead-lettered at its first
// delivery; another failure after MaxDeliver deliveries. Every dead letter
// is counted by consumer and reason. Runs on both implementations.
func TestConsumer(t *testing.T) {
	t.Parallel()
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			b := impl.setup(t)(t)
			ctx := context.Background()
			const subject = "hmp.events.o.p"
			for _, body := range []string{"ok", "transient", "poison", "failing"} {
				if _, err := b.PublishRaw(ctx, subject, []byte(body), ""); err != nil {
					t.Fatal(err)
				}
			}
			var (
				mu         sync.Mutex
				deliveries = map[string]uint64{}
				applied    = map[string]int{}
				done       = make(chan struct{})
			)
			const transientFor = 8 // deliveries, past MaxDeliver
			handler := func(_ context.Context, batch []*Message) []error {
				mu.Lock()
				defer mu.Unlock()
				errs := make([]error, len(batch))
				for i, m := range batch {
					body := string(m.Data)
					deliveries[body] = m.Deliveries
					switch {
					case body == "transient" && m.Deliveries < transientFor:
						errs[i] = fmt.Errorf("%w: database away", ErrTransient)
					case body == "poison":
						errs[i] = fmt.Errorf("%w: undecodable", ErrPoison)
					case body == "failing":
						errs[i] = errors.New("keeps failing")
					default:
						applied[body]++
						if applied["ok"] > 0 && applied["transient"] > 0 {
							select {
							case <-done:
							default:
								close(done)
							}
						}
					}
				}
				return errs
			}
			reg := prometheus.NewRegistry()
			c := NewConsumer(b, ConsumerConfig{Durable: "consumer-test", MaxDeliver: 3, BatchSize: 4, Workers: 2,
				RetryDelay: time.Millisecond, MaxRetryDelay: 20 * time.Millisecond}, handler, slog.New(slog.DiscardHandler), reg)
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Stop)
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("the transient message was not applied in 60s")
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				letters, err := b.DeadLetters(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(letters) == 2 {
					byBody := map[string]DeadLetterInfo{}
					for _, d := range letters {
						byBody[string(d.Data)] = d
					}
					if d := byBody["poison"]; d.Deliveries != 1 || !strings.Contains(d.Reason, "undecodable") || d.Consumer != "consumer-test" || d.StreamSeq != 3 {
						t.Errorf("poison dead letter %+v, want it at once", d)
					}
					if d := byBody["failing"]; d.Deliveries != 3 || !strings.Contains(d.Reason, "failed 3 deliveries: keeps failing") {
						t.Errorf("failing dead letter %+v, want it after 3 deliveries", d)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("dead letters %+v, want 2", letters)
				}
				time.Sleep(10 * time.Millisecond)
			}
			c.Stop()
			mu.Lock()
			defer mu.Unlock()
			if deliveries["transient"] != transientFor || applied["transient"] != 1 || applied["ok"] != 1 {
				t.Errorf("transient: %d deliveries, applied %d; ok applied %d", deliveries["transient"], applied["transient"], applied["ok"])
			}
			if got := counters(t, reg, "hmp_dead_letters_total"); got["consumer-test/poison"] != 1 || got["consumer-test/max_deliveries"] != 1 || len(got) != 2 {
				t.Errorf("hmp_dead_letters_total = %v, want one poison and one max_deliveries", got)
			}
			if floor, err := b.AckFloor(ctx, EventsStream, "consumer-test"); err != nil || floor != 4 {
				t.Errorf("ack floor %d (%v), want every message settled", floor, err)
			}
		})
	}
}

// counters returns the values of a counter family by their label values
// joined with "/".
func counters(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			out[strings.Join(labels, "/")] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestConsumerMetricsFromStart: a new consumer exports every result of
// hmp_consumer_messages_total at zero before its first message, so that
// the bus error-rate alert (retried and dead-lettered over all settled)
// counts the first failures after a start.
func TestConsumerMetricsFromStart(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	NewConsumer(nil, ConsumerConfig{Durable: "reports"}, nil, slog.New(slog.DiscardHandler), reg)
	got := counters(t, reg, "hmp_consumer_messages_total")
	for _, result := range []string{"acked", "retried", "dead_lettered"} {
		if v, ok := got["reports/"+result]; !ok || v != 0 {
			t.Errorf("hmp_consumer_messages_total{consumer=reports,result=%s} = %v (exported: %v), want 0 from the start", result, v, ok)
		}
	}
}
