package app

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"hmp/internal/partitions"
)

// startPartitionMetrics exports the partition load (hmp_partition_*),
// refreshed in the background until Close.
func startPartitionMetrics(b base, pool *pgxpool.Pool) {
	every := b.cfg.PartitionMetricsEvery
	if every < 0 {
		return
	}
	if every == 0 {
		every = 30 * time.Second
	}
	db := stdlib.OpenDBFromPool(pool)
	m := partitions.NewMetrics(db, b.logger)
	b.reg.MustRegister(m)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(ctx, every) })
	b.stops.push(func() {
		cancel()
		wg.Wait()
		_ = db.Close()
	})
}
