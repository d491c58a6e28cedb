package bus

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"hmp/internal/natstest"
)

// TestInstancesStartTogether: instances opening a fresh three-node cluster
// at the same moment all get the streams and the settings bucket, three
// replicas each, instead of failing at start on the race to create them.
func TestInstancesStartTogether(t *testing.T) {
	t.Parallel()
	cl := natstest.Start(t, 3)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	buses := make([]*Bus, n)
	for i := range n {
		wg.Go(func() {
			b, err := Open(context.Background(), Config{URL: cl.URL, Replicas: 3}, slog.New(slog.DiscardHandler))
			if err == nil {
				_, err = b.KeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "hmp_start_test", Replicas: 3})
			}
			buses[i], errs[i] = b, err
		})
	}
	wg.Wait()
	for i, b := range buses {
		if b != nil {
			t.Cleanup(b.Close)
		}
		if errs[i] != nil {
			t.Errorf("instance %d: %v", i, errs[i])
		}
	}
	if t.Failed() {
		return
	}
	streamReplicas(t, buses[0], 3)
}

// TestToolsNeverChangeTheStreams: beside a deployment whose streams have
// three replicas, a tool's open (which knows no replica count) and a
// mistaken serve with one replica leave them at three.
func TestToolsNeverChangeTheStreams(t *testing.T) {
	t.Parallel()
	cl := natstest.Start(t, 3)
	serve := openBus(t, Config{URL: cl.URL, Replicas: 3})
	streamReplicas(t, serve, 3)

	tool := openBus(t, Config{URL: cl.URL, Tool: true})
	streamReplicas(t, tool, 3)
	lower := openBus(t, Config{URL: cl.URL, Replicas: 1})
	streamReplicas(t, lower, 3)

	if _, err := Open(context.Background(), Config{URL: runServer(t), Tool: true}, slog.New(slog.DiscardHandler)); err == nil {
		t.Errorf("a tool opened a bus without the streams (it must not create them)")
	}
}

// streamReplicas fails unless both streams have want replicas.
func streamReplicas(t *testing.T, b *Bus, want int) {
	t.Helper()
	for _, name := range []string{EventsStream, DeadLetterStream} {
		s, err := b.js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Replicas; got != want {
			t.Errorf("stream %s has %d replicas, want %d", name, got, want)
		}
	}
}
