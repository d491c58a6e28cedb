package idempotency_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hmp/internal/clocktest"
	"hmp/internal/domain"
	"hmp/internal/idempotency"
	"hmp/internal/postgres/pgtest"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, &cluster, idempotency.Migrations()) }

// TestPrunerDeletesExpiredKeys: the background pruner deletes the keys
// older than the TTL, keeps the live ones, and reports the table's size.
func TestPrunerDeletesExpiredKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := cluster.NewPool(t)
	clk := clocktest.New(time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC))
	store := idempotency.NewStore(pool, clk.Now)
	org, user := domain.NewID(clk.Now()), domain.NewID(clk.Now())
	hash := idempotency.Hash([]byte(`{}`))
	record := func(key string, at time.Time) {
		if _, err := pool.Exec(ctx, `
			INSERT INTO idempotency_keys (org_id, user_id, route, key, request_hash, status, response, created_at)
			VALUES ($1, $2, 'POST /v1/finance/revenues', $3, $4, 201, '{}', $5)`, org, user, key, hash[:], at); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"old-1", "old-2", "old-3"} {
		record(k, clk.Now().Add(-idempotency.TTL-time.Minute))
	}
	record("live", clk.Now().Add(-time.Hour))

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

// TestCountPastTheBoundIsTheEstimate: past 10,000 keys the gauge takes
// the planner's estimate instead of counting a day of creates one by one.
func TestCountPastTheBoundIsTheEstimate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := cluster.NewPool(t)
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	store := idempotency.NewStore(pool, func() time.Time { return now })
	hash := idempotency.Hash([]byte(`{}`))
	const keys = 12_000
	if _, err := pool.Exec(ctx, `
		INSERT INTO idempotency_keys (org_id, user_id, route, key, request_hash, status, response, created_at)
		SELECT $1, $1, 'POST /v1/finance/revenues', 'k' || i, $2, 201, '{}', $3 FROM generate_series(1, $4) i`,
		domain.NewID(now), hash[:], now, keys); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE idempotency_keys`); err != nil {
		t.Fatal(err)
	}
	n, err := store.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// ANALYZE samples; on a table this small it reads every row.
	if n < keys*9/10 || n > keys*11/10 {
		t.Errorf("count = %d, want about %d (the estimate)", n, keys)
	}
	var raw []byte
	if err := pool.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+idempotency.CountSQL, 10_001).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var plan []struct{ Plan map[string]any }
	if err := json.Unmarshal(raw, &plan); err != nil {
		t.Fatal(err)
	}
	if read := keysRead(plan[0].Plan); read > 10_001 {
		t.Errorf("the gauge read %v keys of %d; want at most 10,001", read, keys)
	}
}

// keysRead sums the rows the plan's scans of idempotency_keys (or its
// partitions) returned.
func keysRead(node map[string]any) float64 {
	var n float64
	if rel, _ := node["Relation Name"].(string); strings.HasPrefix(rel, "idempotency_keys") {
		n += node["Actual Rows"].(float64) * node["Actual Loops"].(float64)
	}
	if kids, ok := node["Plans"].([]any); ok {
		for _, k := range kids {
			n += keysRead(k.(map[string]any))
		}
	}
	return n
}
