package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"hmp/internal/ratelimit"
	"hmp/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func client(t *testing.T, addr string) *redis.Client {
	// Generous timeouts: the shared test machine must not turn a slow
	// answer into a fallback the test does not expect.
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second,
		WriteTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newLimiter(t *testing.T, c redis.UniversalClient, reg prometheus.Registerer, limits map[string]ratelimit.Limit) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(ratelimit.Config{Limits: limits, RedisTimeout: 2 * time.Second}, c, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// TestInProcess: a key gets Count actions, then refusals with a wait;
// other keys and unlimited names are unaffected.
func TestInProcess(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	l := newLimiter(t, nil, reg, map[string]ratelimit.Limit{"login": {Count: 3, Period: time.Hour}})
	ctx := context.Background()
	for i := range 3 {
		if ok, _ := l.Allow(ctx, "login", "a@x"); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	ok, wait := l.Allow(ctx, "login", "a@x")
	if ok || wait < 19*time.Minute || wait > 21*time.Minute {
		t.Errorf("4th attempt: ok=%v wait=%s, want refused with ~20m (one token of 3/h)", ok, wait)
	}
	if ok, _ := l.Allow(ctx, "login", "b@x"); !ok {
		t.Error("another key shares the budget")
	}
	if ok, _ := l.Allow(ctx, "other", "a@x"); !ok {
		t.Error("an unconfigured limit refused")
	}
	if got := testutil.ToFloat64(counter(t, reg, "login")); got != 1 {
		t.Errorf("rejections{login} = %v, want 1", got)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, limit string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() != "hmp_ratelimit_rejections_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "limit" && lp.GetValue() == limit {
					g.Set(m.GetCounter().GetValue())
				}
			}
		}
	}
	return g
}

// TestRedisSharedThenDown: two instances sharing one Redis share one
// budget; with Redis killed every decision is still taken (in process),
// and after five consecutive failures the breaker opens.
func TestRedisSharedThenDown(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	limits := map[string]ratelimit.Limit{"login": {Count: 4, Period: time.Hour}}
	regA := prometheus.NewRegistry()
	a := newLimiter(t, client(t, rs.Addr), regA, limits)
	b := newLimiter(t, client(t, rs.Addr), nil, limits)
	ctx := context.Background()

	allowed := 0
	for i := range 4 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if ok, _ := l.Allow(ctx, "login", "shared@x"); ok {
			allowed++
		}
	}
	if allowed != 4 {
		t.Fatalf("allowed %d of the first 4 across two instances", allowed)
	}
	for _, l := range []*ratelimit.Limiter{a, b} {
		ok, wait := l.Allow(ctx, "login", "shared@x")
		if ok || wait < time.Second {
			t.Errorf("5th attempt on either instance: ok=%v wait=%s, want refused: the budget is shared", ok, wait)
		}
	}

	rs.Kill()
	// Redis is gone: decisions go on in process (a fresh key is allowed,
	// never an error), and the breaker opens after 5 failures.
	for i := range 8 {
		if ok, _ := a.Allow(ctx, "login", fmt.Sprintf("k%d", i)); !ok {
			t.Errorf("with Redis down, a fresh key was refused (attempt %d)", i)
		}
	}
	if got := gauge(t, regA, "hmp_ratelimit_redis_breaker_state"); got != 2 {
		t.Errorf("breaker state = %v, want 2 (open)", got)
	}
	if got := gauge(t, regA, "hmp_ratelimit_redis_fallbacks_total"); got != 8 {
		t.Errorf("fallbacks = %v, want 8", got)
	}
	// The in-process budget holds while Redis is out.
	for range 4 {
		a.Allow(ctx, "login", "local@x")
	}
	if ok, _ := a.Allow(ctx, "login", "local@x"); ok {
		t.Error("in-process fallback does not limit")
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestSpent: Spent reads a budget without taking from it, in process and
// in Redis: a key is spent only once Allow has taken its Count, and then
// says how long to wait.
func TestSpent(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
	}{{"in process", nil}, {"redis", client(t, rs.Addr)}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(t, tc.client, prometheus.NewRegistry(), map[string]ratelimit.Limit{ratelimit.OperatorAddr: {Count: 2, Period: time.Hour}})
			ctx := context.Background()
			key := "10.0.0.1-" + tc.name
			for i := range 5 {
				if spent, _ := l.Spent(ctx, ratelimit.OperatorAddr, key); spent {
					t.Fatalf("spent after %d peeks and no failure", i)
				}
			}
			l.Allow(ctx, ratelimit.OperatorAddr, key)
			if spent, _ := l.Spent(ctx, ratelimit.OperatorAddr, key); spent {
				t.Fatal("spent after one of two")
			}
			l.Allow(ctx, ratelimit.OperatorAddr, key)
			spent, wait := l.Spent(ctx, ratelimit.OperatorAddr, key)
			if !spent || wait < 29*time.Minute || wait > 31*time.Minute {
				t.Fatalf("after two of two: spent=%v wait=%s, want spent with ~30m", spent, wait)
			}
			if spent, _ := l.Spent(ctx, ratelimit.OperatorAddr, "10.0.0.2-"+tc.name); spent {
				t.Fatal("another address shares the budget")
			}
		})
	}
}
