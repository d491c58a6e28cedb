package settings_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"hmp/internal/clocktest"
	"hmp/internal/natstest"
	"hmp/internal/settings"
)

// bucket opens the settings bucket over a connection of its own, as one
// instance does.
func bucket(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), settings.BucketConfig())
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestSessions: a session opened on one instance is valid on another that
// shares the bus; ending it on either ends it on both at once; it expires
// by the server's clock whatever the cookie says; the bucket never holds
// the id; unknown and empty ids are refused.
func TestSessions(t *testing.T) {
	t.Parallel()
	url := natstest.StartServer(t)
	clk := clocktest.New(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	kvA, kvB := bucket(t, url), bucket(t, url)
	a := settings.NewSessions(kvA, settings.SessionsConfig{TTL: time.Hour, Clock: clk.Now})
	b := settings.NewSessions(kvB, settings.SessionsConfig{TTL: time.Hour, Clock: clk.Now})
	ctx := context.Background()
	valid := func(s *settings.Sessions, id string) bool {
		t.Helper()
		ok, err := s.Valid(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	open := func(s *settings.Sessions) string {
		t.Helper()
		id, exp, err := s.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) < 64 || !exp.Equal(clk.Now().Add(time.Hour)) {
			t.Fatalf("session %q expires %s", id, exp)
		}
		return id
	}

	t.Run("shared and ended everywhere", func(t *testing.T) {
		id := open(a)
		if !valid(a, id) || !valid(b, id) {
			t.Fatal("an open session is not valid on both instances")
		}
		if err := b.End(ctx, id); err != nil {
			t.Fatal(err)
		}
		if valid(a, id) || valid(b, id) {
			t.Fatal("a session ended on one instance is still valid")
		}
		if err := a.End(ctx, id); err != nil {
			t.Fatalf("ending it twice: %v", err)
		}
	})
	t.Run("expires on the server", func(t *testing.T) {
		id := open(a)
		clk.Advance(59 * time.Minute)
		if !valid(b, id) {
			t.Fatal("expired early")
		}
		clk.Advance(time.Minute)
		if valid(b, id) || valid(a, id) {
			t.Fatal("valid past its expiry")
		}
	})
	t.Run("unknown ids", func(t *testing.T) {
		id := open(a)
		for _, bad := range []string{"", "x", strings.ToUpper(id), id[:len(id)-1]} {
			if valid(a, bad) {
				t.Fatalf("%q is valid", bad)
			}
		}
	})
	t.Run("the bucket holds no id, and expired ones are swept", func(t *testing.T) {
		id := open(a)
		clk.Advance(2 * time.Hour)
		fresh := open(b) // sweeps the expired
		keys, err := kvA.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		for k := range keys.Keys() {
			if strings.Contains(k, id) || strings.Contains(k, fresh) {
				t.Fatalf("key %q holds a session id", k)
			}
			if strings.HasPrefix(k, "session.") {
				n++
			}
		}
		if n != 1 || !valid(a, fresh) {
			t.Fatalf("%d sessions kept after the sweep, want the fresh one", n)
		}
	})
}
