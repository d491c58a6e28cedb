package app

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/bus"
	"hmp/internal/cache"
	"hmp/internal/reports"
)

// startCache builds the report cache (nil when off) and starts listening
// for invalidations on the bus.
func startCache(ctx context.Context, cfg cache.Config, b *bus.Bus, logger *slog.Logger, reg prometheus.Registerer) (*cache.Cache, error) {
	c, err := cache.New(cfg, logger, reg)
	if err != nil || c == nil {
		return nil, err
	}
	if err := c.Start(ctx, b.Conn()); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// invalidateAfterCommit is the projector's AfterCommit: it hands each
// committed batch's changes to the cache (nil when the cache is off).
func invalidateAfterCommit(c *cache.Cache, b *bus.Bus) func(context.Context, []reports.Touched) {
	if c == nil {
		return nil
	}
	return func(ctx context.Context, touched []reports.Touched) {
		c.Committed(ctx, b.Conn(), reports.CacheChanges(touched))
	}
}

// bothAfterCommit runs a configured AfterCommit hook and then the cache's
// invalidation; either may be nil.
func bothAfterCommit(first, second func(context.Context, []reports.Touched)) func(context.Context, []reports.Touched) {
	switch {
	case first == nil:
		return second
	case second == nil:
		return first
	}
	return func(ctx context.Context, touched []reports.Touched) {
		first(ctx, touched)
		second(ctx, touched)
	}
}
