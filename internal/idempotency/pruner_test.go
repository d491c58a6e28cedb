package idempotency_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hmp/internal/domain"
	"hmp/internal/idempotency"
	"hmp/internal/postgres/pgtest"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, &cluster, idempotency.Migrations()) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// TestPrunerDeletesExpiredKeys: the background pruner deletes the keys
// older than the TTL, keeps the live ones, and reports the table's size.
func TestPrunerDeletesExpiredKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := cluster.NewPool(t)
	clk := &clock{t: time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)}
	store := idempotency.NewStore(pool, clk.now)
	org, user := domain.NewID(clk.now()), domain.NewID(clk.now())
	hash := idempotency.Hash([]byte(`{}`))
	record := func(key string, at time.Time) {
		if _, err := pool.Exec(ctx, `
			INSERT INTO idempotency_keys (org_id, user_id, route, key, request_hash, status, response, created_at)
			VALUES ($1, $2, 'POST /v1/finance/revenues', $3, $4, 201, '{}', $5)`, org, user, key, hash[:], at); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"old-1", "old-2", "old-3"} {
		record(k, clk.now().Add(-idempotency.TTL-time.Minute))
	}
	record("live", clk.now().Add(-time.Hour))

	reg := prometheus.NewRegistry()
	p := idempotency.NewPruner(store, idempotency.PrunerConfig{Interval: time.Hour}, slog.New(slog.DiscardHandler), reg)
	cycled := p.Cycled()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	<-cycled
	p.Stop()
	p.Stop() // safe twice

	n, err := store.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("keys after prune = %d, want 1 (the live one)", n)
	}
	if _, ans, err := store.Reserve(ctx, idempotency.Key{OrgID: org, UserID: user, Route: "POST /v1/finance/revenues", Value: "live"}, hash); err != nil || ans == nil {
		t.Errorf("live key: answer %v, %v; want its recorded answer", ans, err)
	}
	if got := testutil.ToFloat64(p.KeysGauge()); got != 1 {
		t.Errorf("hmp_idempotency_keys = %v, want 1", got)
	}
	if got, err := testutil.GatherAndCount(reg, "hmp_idempotency_keys_pruned_total"); err != nil || got != 1 {
		t.Errorf("pruned counter series = %d, %v", got, err)
	}
}
