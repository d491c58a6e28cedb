package reports

import (
	"context"
	"fmt"
	"time"

	"hmp/internal/knobs"
)

// Tuning returns the consumption knobs in force.
func (p *Projector) Tuning() knobs.Projector {
	p.mu.Lock()
	c := p.consumer.Config()
	p.mu.Unlock()
	return knobs.Projector{MaxConcurrency: c.MaxAckPending, BatchSize: c.BatchSize, Workers: c.Workers, LingerMs: int(c.Linger / time.Millisecond)}
}

// Tune changes the projector's consumption while it runs: the consumer is
// stopped (it stops fetching and finishes and acknowledges every message
// already delivered to it, so none waits out AckWait), then started again
// with the new settings from where it left off; the durable consumer on
// the server keeps its position, and its MaxAckPending is updated. Nothing
// is lost (unacknowledged messages are redelivered) and nothing applies
// twice (the applied-event record). A stopped projector just takes the
// settings for its next Start.
func (p *Projector) Tune(ctx context.Context, t knobs.Projector) error {
	if err := t.Validate(); err != nil {
		return err
	}
	p.tuning.Lock()
	defer p.tuning.Unlock()
	p.mu.Lock()
	running, old := p.cancel != nil, p.consumer
	p.mu.Unlock()
	cfg := old.Config()
	if cfg.MaxAckPending == t.MaxConcurrency && cfg.BatchSize == t.BatchSize && cfg.Workers == t.Workers && cfg.Linger == t.Linger() {
		return nil
	}
	cfg.MaxAckPending, cfg.BatchSize, cfg.Workers, cfg.Linger = t.MaxConcurrency, t.BatchSize, t.Workers, t.Linger()
	next := old.Retuned(cfg)
	if running {
		// Stop the old consumer outside p.mu: its last batches take p.mu
		// when they commit.
		old.Stop()
		if err := next.Start(ctx); err != nil {
			if rerr := old.Start(ctx); rerr != nil {
				p.logger.Error("projector_restart_failed", "error", rerr.Error())
			}
			return fmt.Errorf("projector retune: %w", err)
		}
	}
	p.mu.Lock()
	p.consumer = next
	stopped := running && p.cancel == nil // Stop ran meanwhile, on the old one
	p.mu.Unlock()
	if stopped {
		next.Stop()
	}
	p.logger.Info("projector_tuned", "max_concurrency", t.MaxConcurrency, "batch_size", t.BatchSize,
		"workers", t.Workers, "linger", t.Linger().String())
	return nil
}
