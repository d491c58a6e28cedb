package tools

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"hmp/internal/cache"
	"hmp/internal/config"
	"hmp/internal/reconcile"
	"hmp/internal/reports"
)

// fixAnnouncer is the invalidation of `hmp reconcile --fix`. With an
// external bus (cfg.NATSURL) it announces each corrected batch's days to
// every serving instance's cache, on the subject their projectors use, so
// that no server keeps serving a corrected day from its tiers. Without one
// it returns nil: the embedded bus lives inside a server, and served
// reports of corrected days age out with their TTL. Call stop when done;
// it flushes what was announced.
func fixAnnouncer(cfg config.Config, logger *slog.Logger) (invalidate reconcile.Invalidate, stop func(), err error) {
	if cfg.NATSURL == "" {
		return nil, func() {}, nil
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("hmp-reconcile"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect nats: %w", err)
	}
	subject := cfg.Cache.WithDefaults().Subject
	invalidate = func(_ context.Context, touched []reports.Touched) {
		if err := cache.Announce(nc, subject, reports.CacheChanges(touched)); err != nil {
			// Lost: the servers serve what they hold until its TTL.
			logger.Warn("reconcile_announce_failed", "error", err.Error())
		}
	}
	stop = func() {
		if err := nc.Flush(); err != nil {
			logger.Warn("reconcile_announce_failed", "error", err.Error())
		}
		nc.Close()
	}
	return invalidate, stop, nil
}
