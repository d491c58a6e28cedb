package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/bus"
	"hmp/internal/eventstore"
	"hmp/internal/idempotency"
	"hmp/internal/reports"
)

// The pieces of the event pipeline that role all (Start) and the split
// roles (roles.go) both start, each once here.

// projection returns the projector's configuration and what PostgreSQL
// says the projection has applied. Applied-event records must outlive
// every copy the stream can still deliver: they are kept at least a day
// longer than the stream keeps events.
func (a *App) projection() (reports.ProjectorConfig, *reports.AppliedProgress) {
	projCfg := a.cfg.Projector
	projCfg.Retention = max(projCfg.Retention, a.Bus.Retention()+24*time.Hour)
	return projCfg, reports.NewAppliedProgress(a.Pool, a.cfg.Clock, projCfg.WithDefaults().Retention)
}

// startRelay starts the outbox relay; its recovery from a remade stream
// asks what the projection applied.
func (a *App) startRelay(ctx context.Context, applied *reports.AppliedProgress, reg prometheus.Registerer) error {
	relayCfg := a.cfg.Relay
	if relayCfg.Rewind == nil {
		relayCfg.Rewind = applied.OldestUnapplied
	}
	a.Relay = eventstore.NewRelay(a.Pool, bus.NewPublisher(a.Bus, a.cfg.Publish, a.logger, reg), relayCfg, a.logger, a.cfg.Clock, reg)
	if err := a.Relay.Start(ctx); err != nil {
		return err
	}
	a.closers = append(a.closers, a.Relay.Stop)
	return nil
}

// startProjector starts the report cache and the projector whose commits
// (and the corrections') invalidate it.
func (a *App) startProjector(ctx context.Context, projCfg reports.ProjectorConfig, reg prometheus.Registerer) error {
	var err error
	if a.Cache, err = startCache(ctx, a.cfg.Cache, a.Bus, a.logger, reg); err != nil {
		return err
	}
	a.closers = append(a.closers, a.Cache.Close)
	invalidate := invalidateAfterCommit(a.Cache, a.Bus)
	projCfg.AfterCommit = bothAfterCommit(a.cfg.Projector.AfterCommit, invalidate)
	a.afterCorrection = invalidate // corrections make reports stale as projector batches do
	a.Projector = reports.NewProjector(a.Pool, a.Bus, projCfg, a.logger, a.cfg.Clock, reg)
	if err := a.Projector.Start(ctx); err != nil {
		return err
	}
	a.closers = append(a.closers, a.Projector.Stop)
	return nil
}

// startPruner starts the deletion of expired idempotency keys.
func (a *App) startPruner(ctx context.Context, idem *idempotency.Store, reg prometheus.Registerer) error {
	pruner := idempotency.NewPruner(idem, a.cfg.IdempotencyPruner, a.logger, reg)
	if err := pruner.Start(ctx); err != nil {
		return err
	}
	a.closers = append(a.closers, pruner.Stop)
	return nil
}

// newWaiter is the consistency wait of token reads: per organization from
// PostgreSQL, with the stream-wide fallback of the durable consumer.
func (a *App) newWaiter(applied *reports.AppliedProgress, events *eventstore.Store, durable string) *reports.Waiter {
	return reports.NewWaiter(pipeline{AppliedProgress: applied, events: events, bus: a.Bus, durable: durable},
		reports.WaiterConfig{Timeout: a.cfg.ConsistencyTimeout, StreamWide: a.cfg.ConsistencyStreamWide})
}
