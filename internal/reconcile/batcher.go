package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
	"hmp/internal/reports"
	"hmp/internal/startstop"
)

// Invalidate is told, after a correction commits, which reports it made
// stale: per property, the earliest date it changed (cache invalidation).
type Invalidate func(ctx context.Context, touched []reports.Touched)

// CorrectionBatcher repairs drifted projection rows. Detectors queue the
// keys they found drifting; the batcher coalesces them by key (a key
// queued twice is written once, and since the statement recomputes the
// truth when it writes, the latest truth always wins) and writes them in
// batches of up to BatchSize keys with one statement (daily rows and
// monthly rollups), when the queue reaches BatchSize, every FlushEvery, or
// when the oldest waited MaxAge. A failing batch is retried with
// exponential backoff and jitter until it is written; it is never dropped
// (on Stop it goes back to the queue). It never runs inside a request.
type CorrectionBatcher struct {
	pool       *pgxpool.Pool
	cfg        Config
	logger     *slog.Logger
	now        func() time.Time
	invalidate Invalidate
	m          batcherMetrics

	mu      sync.Mutex
	queue   map[Key]time.Time // key -> when first queued
	kick    chan struct{}     // a full batch is waiting
	writing sync.Mutex        // one batch written at a time
	base    startstop.Base
	flushed startstop.Signal // fired after each written batch

	// live holds the mode switched at run time (live.go).
	live liveMode

	// beforeWrite, when set (tests), runs before each write try; its
	// error fails the try.
	beforeWrite func() error
}

type batcherMetrics struct {
	size     prometheus.Histogram
	seconds  prometheus.Histogram
	errors   prometheus.Counter
	queue    prometheus.Gauge
	applied  prometheus.Counter
	deferred prometheus.Counter
	dropped  prometheus.Counter
}

// NewCorrectionBatcher returns a stopped batcher. invalidate may be nil;
// reg may be nil.
func NewCorrectionBatcher(pool *pgxpool.Pool, cfg Config, invalidate Invalidate, logger *slog.Logger, now func() time.Time, reg prometheus.Registerer) *CorrectionBatcher {
	b := &CorrectionBatcher{
		pool: pool, cfg: cfg.WithDefaults(), logger: logger, now: now, invalidate: invalidate,
		queue: map[Key]time.Time{}, kick: make(chan struct{}, 1),
		m: batcherMetrics{
			size: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hmp_corrections_batch_size",
				Help: "Corrections (distinct property days) per correction write.", Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}}),
			seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hmp_corrections_batch_seconds",
				Help: "Time to write one batch of corrections, retries included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
			errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_corrections_errors_total",
				Help: "Correction writes that failed (each is retried)."}),
			queue: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hmp_corrections_queue_size",
				Help: "Corrections waiting to be written."}),
			applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_corrections_applied_total",
				Help: "Projection rows (daily and monthly) corrected."}),
			deferred: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_corrections_deferred_total",
				Help: "Corrections skipped because their property had events not yet applied (found again by a later check)."}),
			dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_corrections_dropped_total",
				Help: "Detections not queued because the queue was full (found again by a later check)."}),
		},
	}
	if reg != nil {
		reg.MustRegister(b.m.size, b.m.seconds, b.m.errors, b.m.queue, b.m.applied, b.m.deferred, b.m.dropped)
	}
	return b
}

// Config returns the batcher's settings.
func (b *CorrectionBatcher) Config() Config { return b.cfg }

// Enqueue queues corrections of keys. It never blocks on the database.
func (b *CorrectionBatcher) Enqueue(keys ...Key) {
	now := time.Now()
	b.mu.Lock()
	for _, k := range keys {
		if _, ok := b.queue[k]; ok {
			continue
		}
		if len(b.queue) >= b.cfg.MaxQueue {
			b.m.dropped.Inc()
			continue
		}
		b.queue[k] = now
	}
	n := len(b.queue)
	b.mu.Unlock()
	b.m.queue.Set(float64(n))
	if n >= b.cfg.BatchSize {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// Pending returns how many corrections are queued.
func (b *CorrectionBatcher) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// Flushed returns a channel closed after the next batch is written.
func (b *CorrectionBatcher) Flushed() <-chan struct{} {
	return b.flushed.Wait()
}

// Start writes queued corrections in the background until Stop. Safe to
// call twice.
func (b *CorrectionBatcher) Start(ctx context.Context) error {
	b.base.Start(ctx, b.loop)
	return nil
}

// Stop stops the background writer after a last bounded attempt to write
// what is queued. Safe to call twice.
func (b *CorrectionBatcher) Stop() {
	if !b.base.Stop() {
		return
	}
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := b.Flush(ctx); err != nil && b.Pending() > 0 {
		b.logger.Warn("corrections_left_queued", "pending", b.Pending(), "error", err.Error())
	}
}

func (b *CorrectionBatcher) loop(ctx context.Context) {
	tick := time.NewTicker(b.cfg.FlushEvery)
	defer tick.Stop()
	age := time.NewTimer(b.cfg.MaxAge)
	defer age.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		case <-tick.C:
		case <-age.C:
		}
		if err := b.Flush(ctx); err != nil && ctx.Err() == nil {
			b.logger.Error("corrections_flush_failed", "error", err.Error())
		}
		// The next max-age deadline is the oldest queued correction's.
		age.Reset(b.untilOldestDue())
	}
}

func (b *CorrectionBatcher) untilOldestDue() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	var oldest time.Time
	for _, t := range b.queue {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	if oldest.IsZero() {
		return b.cfg.MaxAge
	}
	return max(time.Until(oldest.Add(b.cfg.MaxAge)), time.Millisecond)
}

// take removes up to n queued keys, in key order (the projector's lock
// order), oldest first.
func (b *CorrectionBatcher) take(n int) []Key {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := slices.Collect(maps.Keys(b.queue))
	if len(keys) > n {
		// Oldest first; among keys queued together, in key order, so that a
		// batch covers whole property and date ranges (fewer months to sum).
		slices.SortFunc(keys, func(x, y Key) int {
			if c := b.queue[x].Compare(b.queue[y]); c != 0 {
				return c
			}
			return x.Compare(y)
		})
		keys = keys[:n]
	}
	for _, k := range keys {
		delete(b.queue, k)
	}
	b.m.queue.Set(float64(len(b.queue)))
	slices.SortFunc(keys, Key.Compare)
	return keys
}

// requeue puts keys back (a batch that could not be written).
func (b *CorrectionBatcher) requeue(keys []Key) {
	now := time.Now()
	b.mu.Lock()
	for _, k := range keys {
		if _, ok := b.queue[k]; !ok {
			b.queue[k] = now
		}
	}
	b.m.queue.Set(float64(len(b.queue)))
	b.mu.Unlock()
}

// Flush writes everything queued now, batch after batch, retrying a
// failing batch until ctx ends; then the unwritten keys go back to the
// queue and ctx's error is returned.
func (b *CorrectionBatcher) Flush(ctx context.Context) error {
	b.writing.Lock()
	defer b.writing.Unlock()
	for {
		keys := b.take(b.cfg.BatchSize)
		if len(keys) == 0 {
			return nil
		}
		if err := b.writeBatch(ctx, keys); err != nil {
			b.requeue(keys)
			return err
		}
	}
}

// writeBatch writes one batch, with retries, and announces what it fixed.
func (b *CorrectionBatcher) writeBatch(ctx context.Context, keys []Key) error {
	start := time.Now()
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = b.cfg.RetryMax
	bo.RandomizationFactor = 0.5 // jitter: instances retrying together spread out
	res, err := backoff.Retry(ctx, func() (Correction, error) {
		res, err := b.write(ctx, keys)
		if err != nil {
			b.m.errors.Inc()
			b.logger.Warn("corrections_write_failed", "keys", len(keys), "error", err.Error())
		}
		return res, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return fmt.Errorf("write corrections: %w", err)
	}
	b.m.size.Observe(float64(len(keys)))
	b.m.seconds.Observe(time.Since(start).Seconds())
	b.m.applied.Add(float64(res.Rows))
	b.m.deferred.Add(float64(res.Deferred))
	if res.Rows > 0 {
		b.logger.Info("corrections_applied", "keys", len(keys), "rows", res.Rows, "deferred", res.Deferred)
	}
	if b.invalidate != nil && len(res.Touched) > 0 {
		b.invalidate(ctx, res.Touched)
	}
	b.flushed.Fire()
	return nil
}

// Correction is what one correction write did.
type Correction struct {
	// Rows counts the projection rows (daily and monthly) written.
	Rows int
	// Deferred counts the keys left alone: their property had events not
	// yet applied.
	Deferred int
	// Touched lists, per property, the earliest date changed.
	Touched []reports.Touched
}

// write runs the correction statement over keys: once for the whole batch,
// or once per key in row mode.
func (b *CorrectionBatcher) write(ctx context.Context, keys []Key) (Correction, error) {
	if b.beforeWrite != nil {
		if err := b.beforeWrite(); err != nil {
			return Correction{}, err
		}
	}
	if b.mode() == ModeRow {
		var all Correction
		for _, k := range keys {
			c, err := Correct(ctx, b.pool, []Key{k}, b.now().Add(-b.cfg.Window), b.now())
			if err != nil {
				return all, err
			}
			all.Rows += c.Rows
			all.Deferred += c.Deferred
			all.Touched = mergeTouched(all.Touched, c.Touched)
		}
		return all, nil
	}
	return Correct(ctx, b.pool, keys, b.now().Add(-b.cfg.Window), b.now())
}

func mergeTouched(a, b []reports.Touched) []reports.Touched {
	for _, t := range b {
		i := slices.IndexFunc(a, func(x reports.Touched) bool { return x.OrgID == t.OrgID && x.PropertyID == t.PropertyID })
		if i < 0 {
			a = append(a, t)
		} else if t.From.Before(a[i].From) {
			a[i].From = t.From
		}
	}
	return a
}

// Correct writes the corrections of keys: it reads them with one
// statement (see deltasSQL) and adds them through reports.CorrectCashBook.
// Properties with events committed since settledSince that the projector
// has not applied are deferred. It returns the rows written and the
// reports made stale.
func Correct(ctx context.Context, pool *pgxpool.Pool, keys []Key, settledSince, now time.Time) (Correction, error) {
	orgs, props, dates := keyArrays(keys)
	var res Correction
	compute := func(q eventstore.Querier) ([]reports.Delta, error) {
		res = Correction{}
		rows, err := q.Query(ctx, deltasSQL(), orgs, props, dates, settledSince)
		if err != nil {
			return nil, fmt.Errorf("read corrections: %w", postgres.Translate(err))
		}
		defer rows.Close()
		var deltas []reports.Delta
		for rows.Next() {
			var (
				kind string
				dl   reports.Delta
				d    time.Time
				f    = &dl.Flows
			)
			if err := rows.Scan(&kind, &dl.OrgID, &dl.PropertyID, &d, &f.CashReceived, &f.BankReceived, &f.CashExpenses, &f.BankExpenses,
				&f.PendingCashReceived, &f.PendingBankReceived, &f.PendingCashExpenses, &f.PendingBankExpenses,
				&f.ApprovedCount, &f.PendingCount, &dl.Counted, &dl.CountedVersion); err != nil {
				return nil, fmt.Errorf("read corrections: %w", err)
			}
			dl.Date = domain.DateOf(d)
			if kind == "x" {
				res.Deferred++
				continue
			}
			dl.Month = kind == "m"
			deltas = append(deltas, dl)
			res.Touched = mergeTouched(res.Touched, []reports.Touched{{OrgID: dl.OrgID, PropertyID: dl.PropertyID, From: dl.Date}})
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read corrections: %w", postgres.Translate(err))
		}
		return deltas, nil
	}
	n, err := reports.CorrectCashBook(ctx, pool, now, compute)
	if err != nil {
		return Correction{}, err
	}
	res.Rows = n
	return res, nil
}

// Detect returns the keys among keys (of settled properties) whose day or
// month differs from the truth. It writes nothing.
func Detect(ctx context.Context, pool *pgxpool.Pool, keys []Key, settledSince time.Time) ([]Key, error) {
	orgs, props, dates := keyArrays(keys)
	rows, err := pool.Query(ctx, detectSQL(), orgs, props, dates, settledSince)
	if err != nil {
		return nil, fmt.Errorf("detect drift: %w", postgres.Translate(err))
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var (
			k Key
			d time.Time
		)
		if err := rows.Scan(&k.OrgID, &k.PropertyID, &d); err != nil {
			return nil, fmt.Errorf("detect drift: %w", err)
		}
		k.Date = domain.DateOf(d)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("detect drift: %w", postgres.Translate(err))
	}
	return out, nil
}

func keyArrays(keys []Key) (orgs, props []pgtype.UUID, dates []time.Time) {
	orgs = make([]pgtype.UUID, len(keys))
	props = make([]pgtype.UUID, len(keys))
	dates = make([]time.Time, len(keys))
	for i, k := range keys {
		orgs[i] = pgtype.UUID{Bytes: k.OrgID, Valid: true}
		props[i] = pgtype.UUID{Bytes: k.PropertyID, Valid: true}
		dates[i] = k.Date.Time()
	}
	return orgs, props, dates
}
