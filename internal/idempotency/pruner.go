package idempotency

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/postgres"
	"hmp/internal/startstop"
)

// PrunerConfig tunes the background pruning of expired keys. The zero
// value means the defaults.
type PrunerConfig struct {
	// Interval is the time between two prunes (and two samples of the
	// table's size). Default 5 min.
	Interval time.Duration
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c PrunerConfig) WithDefaults() PrunerConfig {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Minute
	}
	return c
}

// Pruner deletes expired keys in the background, so that the table holds
// about one day of creates instead of growing forever, and exports the
// table's size as the gauge hmp_idempotency_keys.
type Pruner struct {
	store  *Store
	cfg    PrunerConfig
	logger *slog.Logger

	keys   prometheus.Gauge
	pruned prometheus.Counter

	base   startstop.Base
	cycled startstop.Signal
}

// NewPruner returns a stopped Pruner of store; its metrics register on reg
// (nil: not exported).
func NewPruner(store *Store, cfg PrunerConfig, logger *slog.Logger, reg prometheus.Registerer) *Pruner {
	p := &Pruner{
		store: store, cfg: cfg.WithDefaults(), logger: logger,
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hmp_idempotency_keys", Help: "Remembered idempotency keys (live and not yet pruned), sampled after each prune.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hmp_idempotency_keys_pruned_total", Help: "Expired idempotency keys deleted by the background pruner.",
		}),
	}
	if reg != nil {
		reg.MustRegister(p.keys, p.pruned)
	}
	return p
}

// Start prunes once at once, then every Interval, until Stop.
func (p *Pruner) Start(ctx context.Context) error {
	p.base.Start(ctx, p.run)
	return nil
}

// Stop ends the pruner and waits for it. Safe to call twice.
func (p *Pruner) Stop() {
	p.base.Stop()
}

// Cycled returns a channel closed after the next completed prune (tests).
func (p *Pruner) Cycled() <-chan struct{} {
	return p.cycled.Wait()
}

func (p *Pruner) run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		p.cycle(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Pruner) cycle(ctx context.Context) {
	// One cycle never holds on for longer than its interval.
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Interval)
	defer cancel()
	n, err := p.store.Prune(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.logger.Warn("idempotency_prune_failed", "error", err.Error())
		}
	} else {
		p.pruned.Add(float64(n))
		if n > 0 {
			p.logger.Debug("idempotency_pruned", "keys", n)
		}
	}
	if size, err := p.store.Count(ctx); err == nil {
		p.keys.Set(float64(size))
	} else if ctx.Err() == nil {
		p.logger.Warn("idempotency_count_failed", "error", err.Error())
	}
	p.cycled.Fire()
}

// exactUpTo is how many keys Count counts one by one; past it the
// planner's estimate answers, so the gauge never scans a day of creates.
const exactUpTo = 10_000

// countSQL counts at most exactUpTo+1 keys, and gives the planner's row
// estimate of the table and its partitions (kept by autovacuum's
// analyses) for when there are more.
const countSQL = `
	SELECT (SELECT count(*) FROM (SELECT 1 FROM idempotency_keys LIMIT $1) k),
	       coalesce((SELECT sum(greatest(c.reltuples, 0)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	                 WHERE i.inhparent = 'idempotency_keys'::regclass),
	                (SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'idempotency_keys'::regclass))::bigint`

// Count returns how many keys the table holds, expired or not: exact up
// to exactUpTo, the planner's estimate past it (a background gauge must
// not read a whole table).
func (s *Store) Count(ctx context.Context) (int64, error) {
	var exact, estimate int64
	if err := s.pool.QueryRow(ctx, countSQL, exactUpTo+1).Scan(&exact, &estimate); err != nil {
		return 0, fmt.Errorf("count idempotency keys: %w", postgres.Translate(err))
	}
	if exact <= exactUpTo {
		return exact, nil
	}
	return max(estimate, exact), nil
}

// KeysGauge is the hmp_idempotency_keys gauge (tests read it).
func (p *Pruner) KeysGauge() prometheus.Gauge { return p.keys }
