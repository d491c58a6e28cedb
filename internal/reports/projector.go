package reports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/bus"
	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// ProjectorConfig tunes the projector. The zero value of each field means
// its default (the scaling guide's "after" values).
type ProjectorConfig struct {
	// MaxConcurrency is the most messages in flight (delivered, not yet
	// acknowledged). Default 500; the guide's "before" is 20.
	MaxConcurrency int
	// BatchSize is the most events applied in one transaction. Default
	// 500; 1 means one commit per event (the guide's "before").
	BatchSize int
	// Workers is the number of transactions applied concurrently. Default 2.
	Workers int
	// Linger is how long a worker holding fewer than BatchSize events waits
	// for more before applying them. Default 0 (apply at once); phase1
	// lingers 10 ms, well inside the freshness bound.
	Linger time.Duration
	// MaxDeliver is how many deliveries a failing message gets before it
	// is dead-lettered. Default 5.
	MaxDeliver int
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
	// AfterCommit, when set, is called after each batch's transaction
	// commits and before its messages are acknowledged, with one entry per
	// property: the earliest business date the batch changed for it (cache
	// invalidation). nil: nothing.
	AfterCommit func(ctx context.Context, touched []Touched)
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c ProjectorConfig) WithDefaults() ProjectorConfig {
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = 500
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
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
// balance rows. Delivery is at least once; the applied-event record makes
// the effect exactly once. Batches are coalesced per property and day and
// written with one multi-row upsert per table.
type Projector struct {
	cfg    ProjectorConfig
	bus    *bus.Bus
	apply  *applier
	logger *slog.Logger
	m      projectorMetrics

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	applied chan struct{} // closed and replaced after each committed batch
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

// NewProjector returns a stopped projector. reg may be nil.
func NewProjector(pool *pgxpool.Pool, b *bus.Bus, cfg ProjectorConfig, logger *slog.Logger, now func() time.Time, reg prometheus.Registerer) *Projector {
	p := &Projector{
		cfg: cfg.WithDefaults(), bus: b, apply: &applier{pool: pool, now: now}, logger: logger, applied: make(chan struct{}),
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
	return p
}

// Config returns the projector's settings.
func (p *Projector) Config() ProjectorConfig { return p.cfg }

// Applied returns a channel closed after the next committed batch.
func (p *Projector) Applied() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}

// EnsureConsumer creates or updates the durable consumer with the
// projector's settings.
func (p *Projector) EnsureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	c, err := p.bus.JetStream().CreateOrUpdateConsumer(ctx, bus.EventsStream, jetstream.ConsumerConfig{
		Durable: p.cfg.Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: p.cfg.AckWait,
		// Unlimited at the server: the projector dead-letters by itself, so a
		// message is never stranded unacknowledged (which would stall the
		// ack floor that consistent reads wait on).
		MaxDeliver: -1, MaxAckPending: p.cfg.MaxConcurrency, DeliverPolicy: jetstream.DeliverAllPolicy,
		Description: "reports projector: daily and monthly cash balances",
	})
	if err != nil {
		return nil, fmt.Errorf("projector consumer: %w", err)
	}
	return c, nil
}

// Start consumes in the background until Stop. Safe to call twice.
func (p *Projector) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		return nil
	}
	it, err := p.subscribe(ctx)
	if err != nil {
		return err
	}
	ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.done = make(chan struct{})
	msgs := make(chan jetstream.Msg, p.cfg.MaxConcurrency)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(msgs)
		p.fetch(ctx, it, msgs)
	}()
	for range p.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx, msgs)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.pruneLoop(ctx)
	}()
	go func() { wg.Wait(); close(p.done) }()
	return nil
}

// subscribe ensures the consumer and starts pulling from it.
func (p *Projector) subscribe(ctx context.Context) (jetstream.MessagesContext, error) {
	cons, err := p.EnsureConsumer(ctx)
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(p.cfg.MaxConcurrency))
	if err != nil {
		return nil, fmt.Errorf("projector pull: %w", err)
	}
	return it, nil
}

// fetch feeds msgs until ctx ends. On stop it drains the pull: the
// messages already delivered to this process are handed on too, instead of
// waiting out AckWait for a redelivery. If the pull ends by itself (the
// consumer was deleted or lost) it creates the consumer again and goes on,
// replaying from the start; the applied-event record absorbs the replay.
func (p *Projector) fetch(ctx context.Context, it jetstream.MessagesContext, msgs chan<- jetstream.Msg) {
	retry := 100 * time.Millisecond
	for {
		stop := context.AfterFunc(ctx, it.Drain)
		for {
			m, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() == nil {
					p.logger.Error("projector_fetch_failed", "error", err.Error())
				}
				break
			}
			msgs <- m
		}
		stop()
		it.Stop()
		for {
			if !sleepCtx(ctx, retry) {
				return
			}
			var err error
			if it, err = p.subscribe(ctx); err == nil {
				p.logger.Warn("projector_resubscribed")
				retry = 100 * time.Millisecond
				break
			}
			p.logger.Error("projector_subscribe_failed", "error", err.Error())
			retry = min(retry*2, 5*time.Second)
		}
	}
}

// sleepCtx waits d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Stop stops fetching, lets the batches in progress finish, and waits.
// Safe to call twice.
func (p *Projector) Stop() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.cancel = nil
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// work applies batches: it blocks for one message, then takes whatever
// else is already waiting, up to BatchSize, so batches grow with load and
// a lone event is applied at once.
func (p *Projector) work(ctx context.Context, msgs <-chan jetstream.Msg) {
	batch := make([]jetstream.Msg, 0, p.cfg.BatchSize)
	for {
		m, ok := <-msgs
		if !ok {
			return
		}
		batch = append(batch[:0], m)
		// Take what is waiting; then, when lingering, wait a little for
		// more: under a steady trickle, a few milliseconds turn many
		// one-event statements into one.
		var (
			deadline <-chan time.Time
			timer    *time.Timer
		)
		if p.cfg.Linger > 0 && p.cfg.BatchSize > 1 {
			timer = time.NewTimer(p.cfg.Linger)
			deadline = timer.C
		}
	fill:
		for len(batch) < p.cfg.BatchSize {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
				continue
			default:
			}
			if deadline == nil {
				break
			}
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			case <-deadline:
				break fill
			}
		}
		if timer != nil {
			timer.Stop()
		}
		p.handle(context.WithoutCancel(ctx), batch)
	}
}

// handle applies one batch. Poison messages are dead-lettered first; if
// the rest fails together, each is tried alone so one bad event cannot
// hold back the others.
func (p *Projector) handle(ctx context.Context, batch []jetstream.Msg) {
	start := time.Now()
	events := make([]domain.Event, 0, len(batch))
	effects := make([][]change, 0, len(batch))
	good := make([]jetstream.Msg, 0, len(batch))
	for _, m := range batch {
		ev, eff, err := decode(m.Data())
		if err != nil {
			p.deadLetter(ctx, m, err.Error())
			continue
		}
		events, effects, good = append(events, ev), append(effects, eff), append(good, m)
	}
	if len(good) == 0 {
		return
	}
	fresh, err := p.apply.apply(ctx, events, effects)
	if err == nil {
		p.afterCommit(ctx, events, effects, fresh)
		p.committed(good, events, fresh, start)
		return
	}
	p.m.failures.Inc()
	p.logger.Warn("projector_batch_failed", "events", len(good), "error", err.Error())
	if p.transient(ctx, err) {
		// The database is away: nothing is wrong with the events. Retry
		// them later without counting towards dead-lettering.
		for _, m := range good {
			_ = m.NakWithDelay(time.Second)
		}
		p.m.events.WithLabelValues("retried").Add(float64(len(good)))
		return
	}
	if len(good) == 1 {
		p.retryOrDeadLetter(ctx, good[0], err)
		return
	}
	for i, m := range good {
		fresh, err := p.apply.apply(ctx, events[i:i+1], effects[i:i+1])
		if err != nil {
			p.retryOrDeadLetter(ctx, m, err)
			continue
		}
		p.afterCommit(ctx, events[i:i+1], effects[i:i+1], fresh)
		p.committed(good[i:i+1], events[i:i+1], fresh, time.Now())
	}
}

// transient reports whether err comes from the database being unreachable
// rather than from the events.
func (p *Projector) transient(ctx context.Context, err error) bool {
	if errors.Is(postgres.Translate(err), domain.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return p.apply.pool.Ping(ctx) != nil
}

// afterCommit announces the earliest date each property's fresh events
// changed to cfg.AfterCommit.
func (p *Projector) afterCommit(ctx context.Context, events []domain.Event, effects [][]change, fresh map[eventRef]bool) {
	if p.cfg.AfterCommit == nil {
		return
	}
	type propKey struct{ org, prop domain.ID }
	from := make(map[propKey]domain.Date)
	for i, ev := range events {
		if !fresh[eventRef{ev.OrgID, ev.Sequence}] {
			continue
		}
		for _, ch := range effects[i] {
			k := propKey{ch.key.org, ch.key.property}
			if d, ok := from[k]; !ok || ch.key.date.Before(d) {
				from[k] = ch.key.date
			}
		}
	}
	if len(from) == 0 {
		return
	}
	touched := make([]Touched, 0, len(from))
	for k, d := range from {
		touched = append(touched, Touched{OrgID: k.org, PropertyID: k.prop, From: d})
	}
	p.cfg.AfterCommit(ctx, touched)
}

func (p *Projector) committed(msgs []jetstream.Msg, events []domain.Event, fresh map[eventRef]bool, start time.Time) {
	for _, m := range msgs {
		_ = m.Ack() // a lost ack means a redelivery, which the applied record absorbs
	}
	// Freshness: from the write (its event's timestamp, taken just before
	// its commit) to the moment its effect is readable.
	now := p.apply.now()
	for _, ev := range events {
		if fresh[eventRef{ev.OrgID, ev.Sequence}] {
			p.m.lag.Observe(max(now.Sub(ev.Timestamp), 0).Seconds())
		}
	}
	p.m.events.WithLabelValues("applied").Add(float64(len(fresh)))
	p.m.events.WithLabelValues("duplicate").Add(float64(len(msgs) - len(fresh)))
	p.m.batches.Inc()
	p.m.batchSize.Observe(float64(len(msgs)))
	p.m.batchTime.Observe(time.Since(start).Seconds())
	p.mu.Lock()
	close(p.applied)
	p.applied = make(chan struct{})
	p.mu.Unlock()
}

// retryOrDeadLetter asks for a later redelivery, backing off, until the
// message has been delivered MaxDeliver times; then it is dead-lettered.
func (p *Projector) retryOrDeadLetter(ctx context.Context, m jetstream.Msg, err error) {
	md, mdErr := m.Metadata()
	if mdErr == nil && md.NumDelivered >= uint64(p.cfg.MaxDeliver) {
		p.deadLetter(ctx, m, fmt.Sprintf("failed %d deliveries: %v", md.NumDelivered, err))
		return
	}
	// Short backoff: while a message waits for redelivery the consumer's
	// ack floor stands still, and consistent reads of every organization
	// wait on it; MaxDeliver attempts must fit in their 5 s bound.
	delay := time.Second
	if mdErr == nil {
		delay = min(time.Duration(1<<min(md.NumDelivered-1, 5))*200*time.Millisecond, 5*time.Second)
	}
	p.m.events.WithLabelValues("retried").Inc()
	_ = m.NakWithDelay(delay)
}

func (p *Projector) deadLetter(ctx context.Context, m jetstream.Msg, reason string) {
	if err := p.bus.DeadLetter(ctx, m, p.cfg.Durable, reason); err != nil {
		p.logger.Error("projector_dead_letter_failed", "error", err.Error(), "reason", reason)
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	p.m.events.WithLabelValues("dead_lettered").Inc()
	p.logger.Warn("projector_dead_lettered", "subject", m.Subject(), "reason", reason)
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
