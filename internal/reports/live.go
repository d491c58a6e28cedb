package reports

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Tuning is what of the projector's consumption can change while it runs.
type Tuning struct {
	// MaxConcurrency is the most events in flight (≥ 1).
	MaxConcurrency int
	// BatchSize is the most events per transaction (≥ 1; 1: one commit
	// per event).
	BatchSize int
	// Workers is the number of transactions applied at once (≥ 1).
	Workers int
	// Linger is how long a worker waits to fill a batch (≥ 0).
	Linger time.Duration
}

// Validate reports every problem of t.
func (t Tuning) Validate() error {
	var errs []error
	if t.MaxConcurrency < 1 {
		errs = append(errs, fmt.Errorf("projector max concurrency must be at least 1, got %d", t.MaxConcurrency))
	}
	if t.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("projector batch size must be at least 1, got %d", t.BatchSize))
	}
	if t.Workers < 1 {
		errs = append(errs, fmt.Errorf("projector workers must be at least 1, got %d", t.Workers))
	}
	if t.Linger < 0 {
		errs = append(errs, fmt.Errorf("projector linger must not be negative, got %s", t.Linger))
	}
	return errors.Join(errs...)
}

// Tuning returns the consumption settings in force.
func (p *Projector) Tuning() Tuning {
	p.mu.Lock()
	c := p.consumer.Config()
	p.mu.Unlock()
	return Tuning{MaxConcurrency: c.MaxAckPending, BatchSize: c.BatchSize, Workers: c.Workers, Linger: c.Linger}
}

// Tune changes the projector's consumption while it runs: the consumer is
// stopped (it stops fetching and finishes and acknowledges every message
// already delivered to it, so none waits out AckWait), then started again
// with the new settings from where it left off; the durable consumer on
// the server keeps its position, and its MaxAckPending is updated. Nothing
// is lost (unacknowledged messages are redelivered) and nothing applies
// twice (the applied-event record). A stopped projector just takes the
// settings for its next Start.
func (p *Projector) Tune(ctx context.Context, t Tuning) error {
	if err := t.Validate(); err != nil {
		return err
	}
	p.tuning.Lock()
	defer p.tuning.Unlock()
	p.mu.Lock()
	running, old := p.cancel != nil, p.consumer
	p.mu.Unlock()
	cfg := old.Config()
	if cfg.MaxAckPending == t.MaxConcurrency && cfg.BatchSize == t.BatchSize && cfg.Workers == t.Workers && cfg.Linger == t.Linger {
		return nil
	}
	cfg.MaxAckPending, cfg.BatchSize, cfg.Workers, cfg.Linger = t.MaxConcurrency, t.BatchSize, t.Workers, t.Linger
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
		"workers", t.Workers, "linger", t.Linger.String())
	return nil
}
