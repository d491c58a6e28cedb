package eventstore

import (
	"context"
	"testing"
	"time"

	"hmp/internal/domain"
)

// TestRelayPlansItsReadOnce: the outbox read spans every partition of
// events, so a plan per cycle weighs every index of every partition (tens
// of milliseconds at 64 partitions). The relay's session keeps one generic
// plan, and hands its connection back to the pool with the setting reset.
func TestRelayPlansItsReadOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rec := &recorder{}
	r := b.startRelay(t, rec, RelayConfig{})
	for i := range 20 {
		b.commit(t, b.event(domain.NewID(time.Now()), i+1))
		cycles(t, r, 1)
	}
	var calls, plans int64
	err := b.pool.QueryRow(ctx, `
		SELECT coalesce(sum(calls), 0), coalesce(sum(plans), 0) FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND query LIKE '%LEFT JOIN LATERAL%FROM events%ORDER BY tx_id, seq%'`).Scan(&calls, &plans)
	if err != nil {
		t.Fatal(err)
	}
	if calls < 20 {
		t.Fatalf("the relay read ran %d times, want at least 20", calls)
	}
	if plans > 2 {
		t.Fatalf("the relay read was planned %d times in %d runs, want once", plans, calls)
	}
	r.Stop()
	// Every connection of the pool, the relay's included, plans as usual:
	// hold them all at once, so that each is asked.
	n := int(b.pool.Stat().TotalConns())
	for range n {
		c, err := b.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		var mode string
		if err := c.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "auto" {
			t.Fatalf("a pool connection plans with plan_cache_mode %s after the relay stopped", mode)
		}
	}
}
