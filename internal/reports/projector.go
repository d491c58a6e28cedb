package reports

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/bus"
	"hmp/internal/domain"
	"hmp/internal/knobs"
	"hmp/internal/postgres"
	"hmp/internal/startstop"
)

// ProjectorConfig tunes the projector. The zero value of each field means
// its default.
type ProjectorConfig struct {
	// Projector is what of the consumption can change while it runs (the
	// scaling knobs; zero fields: knobs.Projector's built-in defaults).
	knobs.Projector
	// MaxDeliver is how many deliveries a failing message gets before it
	// is dead-lettered. Default 5.
	MaxDeliver int
	// RetryDelay is the redelivery delay after a failed delivery; it
	// doubles with every delivery up to MaxRetryDelay. A database fault is
	// retried so without limit; another failure up to MaxDeliver times.
	// Defaults 200 ms and 5 s.
	RetryDelay, MaxRetryDelay time.Duration
	// AckWait is how long a delivered message may stay unacknowledged
	// before it is redelivered. Default 30 s.
	AckWait time.Duration
	// Durable names the consumer. Default "reports-projector".
	Durable string
	// Retention is how long applied-event records are kept: at least the
	// events stream's retention plus a day. Default 8 days.
	Retention time.Duration
	// PruneEvery is the period of the pruning of applied-event records.
	// Default 1 h.
	PruneEvery time.Duration
	// AfterCommit, if set, is called after each batch's transaction
	// commits and before its messages are acknowledged, with one entry per
	// property the batch changed (the earliest business date it changed).
	// A crash between the two redelivers the batch, which changes nothing
	// then (and calls AfterCommit with nothing). nil: nothing.
	AfterCommit func(ctx context.Context, touched []Touched)
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c ProjectorConfig) WithDefaults() ProjectorConfig {
	c.Projector = c.Projector.WithDefaults()
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 5
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.Durable == "" {
		c.Durable = "reports-projector"
	}
	if c.Retention == 0 {
		c.Retention = 8 * 24 * time.Hour
	}
	if c.PruneEvery == 0 {
		c.PruneEvery = time.Hour
	}
	return c
}

// Projector consumes the events stream and keeps the daily and monthly
// balance rows. The durable consumer (fetch, acknowledgement, redelivery
// with backoff, dead letters) is bus.Consumer; the projector only applies
// batches. Delivery is at least once; the applied-event record makes the
// effect exactly once. Batches are coalesced per property and day and
// written with one multi-row upsert per table.
type Projector struct {
	cfg      ProjectorConfig
	consumer *bus.Consumer
	apply    *applier
	logger   *slog.Logger
	m        projectorMetrics

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	applied startstop.Signal // fired after each committed batch
	tuning  sync.Mutex       // one Tune at a time (live.go)
}

type projectorMetrics struct {
	events    *prometheus.CounterVec
	batches   prometheus.Counter
	batchSize prometheus.Histogram
	batchTime prometheus.Histogram
	failures  prometheus.Counter
	pruned    prometheus.Counter
	lag       prometheus.Histogram
}

// NewProjector returns a stopped projector. b may be nil for a projector
// that is never started (pruning only); reg may be nil.
func NewProjector(pool *pgxpool.Pool, b *bus.Bus, cfg ProjectorConfig, logger *slog.Logger, now func() time.Time, reg prometheus.Registerer) *Projector {
	p := &Projector{
		cfg: cfg.WithDefaults(), apply: &applier{pool: pool, now: now}, logger: logger,
		m: projectorMetrics{
			events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_projector_events_total",
				Help: "Events handled by the reports projector, by result (applied, duplicate, dead_lettered, retried)."}, []string{"result"}),
			batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_projector_batches_total", Help: "Projector transactions committed."}),
			batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hmp_projector_batch_size", Help: "Events per projector transaction.",
				Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}}),
			batchTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hmp_projector_batch_seconds", Help: "Time to apply one projector batch.",
				Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
			failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_projector_failures_total", Help: "Projector batches that failed and were retried."}),
			pruned:   prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_projector_pruned_total", Help: "Applied-event records pruned."}),
			lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hmp_projector_event_lag_seconds",
				Help:    "Freshness: time from a write's event to its effect being readable in the reports.",
				Buckets: []float64{.005, .01, .025, .05, .075, .1, .15, .25, .5, 1, 2.5, 5, 10, 30}}),
		},
	}
	if reg != nil {
		reg.MustRegister(p.m.events, p.m.batches, p.m.batchSize, p.m.batchTime, p.m.failures, p.m.pruned, p.m.lag)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
		p.logger = logger
	}
	p.consumer = bus.NewConsumer(b, bus.ConsumerConfig{
		Durable: p.cfg.Durable, Description: "reports projector: daily and monthly cash balances",
		MaxAckPending: p.cfg.MaxConcurrency, AckWait: p.cfg.AckWait, BatchSize: p.cfg.BatchSize,
		Workers: p.cfg.Workers, Linger: p.cfg.Linger(), MaxDeliver: p.cfg.MaxDeliver,
		RetryDelay: p.cfg.RetryDelay, MaxRetryDelay: p.cfg.MaxRetryDelay,
		Settled: func(result string, n int) {
			if result != "acked" { // applied and duplicates are counted at the commit
				p.m.events.WithLabelValues(result).Add(float64(n))
			}
		},
	}, p.handle, logger, reg)
	return p
}

// Config returns the projector's settings.
func (p *Projector) Config() ProjectorConfig { return p.cfg }

// Applied returns a channel closed after the next committed batch.
func (p *Projector) Applied() <-chan struct{} {
	return p.applied.Wait()
}

// Start consumes in the background until Stop. Safe to call twice.
func (p *Projector) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		return nil
	}
	if err := p.consumer.Start(ctx); err != nil {
		return fmt.Errorf("projector: %w", err)
	}
	ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		p.pruneLoop(ctx)
	}()
	return nil
}

// Stop stops fetching, lets the batches in progress finish, and waits.
// Safe to call twice.
func (p *Projector) Stop() {
	p.mu.Lock()
	cancel, done, consumer := p.cancel, p.done, p.consumer
	p.cancel = nil
	p.mu.Unlock()
	if cancel != nil {
		consumer.Stop()
		cancel()
		<-done
	}
}

// handle applies one batch and says, per message, what failed and how.
// Poison messages are marked first; if the rest fails together for a
// reason other than the database being away, each is tried alone, so one
// bad event cannot hold back the others: an event whose sums would leave
// int64 is then marked poison (it is impossible under the volume cap), a
// database fault transient (retried without limit), anything else left to
// the consumer's bounded retries.
func (p *Projector) handle(ctx context.Context, batch []*bus.Message) []error {
	start := time.Now()
	errs := make([]error, len(batch))
	events := make([]domain.Event, 0, len(batch))
	effects := make([][]change, 0, len(batch))
	good := make([]int, 0, len(batch))
	failed := false
	for i, m := range batch {
		ev, eff, err := decode(m.Data)
		if err != nil {
			errs[i], failed = fmt.Errorf("%w: %w", bus.ErrPoison, err), true
			continue
		}
		events, effects, good = append(events, ev), append(effects, eff), append(good, i)
	}
	if len(good) == 0 {
		return errs
	}
	fresh, err := p.applyBounded(ctx, events, effects)
	if err == nil {
		p.committed(ctx, events, effects, fresh, start)
		if failed {
			return errs
		}
		return nil
	}
	p.m.failures.Inc()
	// The first event names the batch in the log (each is retried alone
	// below, and a dead letter logs its own id).
	p.logger.Warn("projector_batch_failed", "events", len(good), "event_id", events[0].ID.String(),
		"org_id", events[0].OrgID.String(), "error", err.Error())
	if len(good) > 1 && !p.transient(ctx, err) {
		for j, i := range good {
			fresh, err := p.applyBounded(ctx, events[j:j+1], effects[j:j+1])
			if err == nil {
				p.committed(ctx, events[j:j+1], effects[j:j+1], fresh, time.Now())
				continue
			}
			errs[i] = p.classify(ctx, err)
		}
		return errs
	}
	err = p.classify(ctx, err)
	for _, i := range good {
		errs[i] = err
	}
	return errs
}

// applyBounded applies within AckWait: a database that stalls (stopped,
// partitioned) fails the batch with a deadline, which is transient,
// instead of holding a worker until the connection's TCP timeout; by then
// the messages would be redelivered anyway.
func (p *Projector) applyBounded(ctx context.Context, events []domain.Event, effects [][]change) (map[eventRef]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AckWait)
	defer cancel()
	return p.apply.apply(ctx, events, effects)
}

// classify marks an apply error for the consumer.
func (p *Projector) classify(ctx context.Context, err error) error {
	switch {
	case p.transient(ctx, err):
		return fmt.Errorf("%w: %w", bus.ErrTransient, err)
	case postgres.Overflow(err):
		return fmt.Errorf("%w: the event's amounts would overflow its balances: %w", bus.ErrPoison, err)
	}
	return err
}

// transient reports whether err comes from the database being away,
// overloaded or in the way rather than from the events: by its class, or,
// for an unclassified error, by the database not answering a ping.
func (p *Projector) transient(ctx context.Context, err error) bool {
	if postgres.Transient(err) {
		return true
	}
	if postgres.Overflow(err) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return p.apply.pool.Ping(ctx) != nil
}

// committed accounts for a committed batch and tells AfterCommit what it
// changed, before the consumer acknowledges its messages.
func (p *Projector) committed(ctx context.Context, events []domain.Event, effects [][]change, fresh map[eventRef]bool, start time.Time) {
	// Freshness: from the write (its event's timestamp, taken just before
	// its commit) to the moment its effect is readable.
	now := p.apply.now()
	var touched map[[2]domain.ID]domain.Date
	if p.cfg.AfterCommit != nil {
		touched = make(map[[2]domain.ID]domain.Date)
	}
	for i, ev := range events {
		r := eventRef{ev.OrgID, ev.Sequence}
		if !fresh[r] {
			continue
		}
		p.m.lag.Observe(max(now.Sub(ev.Timestamp), 0).Seconds())
		if touched == nil {
			continue
		}
		for _, c := range effects[i] {
			k := [2]domain.ID{c.key.org, c.key.property}
			if d, ok := touched[k]; !ok || c.key.date.Before(d) {
				touched[k] = c.key.date
			}
		}
	}
	if touched != nil {
		out := make([]Touched, 0, len(touched))
		for k, d := range touched {
			out = append(out, Touched{OrgID: k[0], PropertyID: k[1], From: d})
		}
		p.cfg.AfterCommit(ctx, out)
	}
	p.m.events.WithLabelValues("applied").Add(float64(len(fresh)))
	p.m.events.WithLabelValues("duplicate").Add(float64(len(events) - len(fresh)))
	p.m.batches.Inc()
	p.m.batchSize.Observe(float64(len(events)))
	p.m.batchTime.Observe(time.Since(start).Seconds())
	p.applied.Fire()
}

func (p *Projector) pruneLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := p.Prune(ctx); err != nil && ctx.Err() == nil {
				p.logger.Warn("projector_prune_failed", "error", err.Error())
			}
		}
	}
}

// Prune deletes the applied-event records older than the retention: no
// copy of those events can be delivered any more, as the stream keeps
// messages for less than that.
func (p *Projector) Prune(ctx context.Context) (int64, error) {
	n, err := p.apply.prune(ctx, p.apply.now().Add(-p.cfg.Retention))
	p.m.pruned.Add(float64(n))
	return n, err
}
