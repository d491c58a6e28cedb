package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/startstop"
)

// Detector finds drift two of the three ways (the third is `hmp reconcile
// --fix`) and queues its corrections on the batcher:
//   - Sample: a report read offers its key; at most SampleRate a second
//     are taken, and checked on the detector's own goroutine, never in the
//     read's latency (a full hand-off buffer drops the sample);
//   - the sweep: every SweepEvery, every property the projector changed
//     since the previous sweep is reconciled.
type Detector struct {
	pool    *pgxpool.Pool
	rec     *Reconciler
	batcher *CorrectionBatcher
	cfg     Config
	logger  *slog.Logger
	now     func() time.Time
	limit   *rate.Limiter // nil: sampling off
	samples chan Key
	found   *prometheus.CounterVec

	base  startstop.Base
	swept startstop.Signal // fired after each sweep and each sample check
}

// NewDetector returns a stopped detector feeding batcher. reg may be nil.
func NewDetector(pool *pgxpool.Pool, rec *Reconciler, batcher *CorrectionBatcher, logger *slog.Logger, now func() time.Time, reg prometheus.Registerer) *Detector {
	cfg := batcher.Config()
	d := &Detector{pool: pool, rec: rec, batcher: batcher, cfg: cfg, logger: logger, now: now,
		samples: make(chan Key, 256),
		found: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_corrections_detected_total",
			Help: "Drifted property days found, by detector (sample, sweep, fix)."}, []string{"source"}),
	}
	if cfg.SampleRate > 0 {
		d.limit = rate.NewLimiter(rate.Limit(cfg.SampleRate), max(1, int(cfg.SampleRate)))
	}
	if reg != nil {
		reg.MustRegister(d.found)
	}
	return d
}

// Sample offers one report read's key for a drift check. It returns at
// once: rate-limited, handed off without blocking, checked later. Safe on
// a nil Detector (does nothing).
func (d *Detector) Sample(org, property domain.ID, date domain.Date) {
	if d == nil || d.limit == nil || !d.limit.Allow() {
		return
	}
	select {
	case d.samples <- Key{org, property, date}:
	default:
	}
}

// Checked returns a channel closed after the next sweep or sample check.
func (d *Detector) Checked() <-chan struct{} {
	return d.swept.Wait()
}

// Start runs the sample checks and the sweep until Stop. Safe to call
// twice.
func (d *Detector) Start(ctx context.Context) error {
	return d.base.StartWith(ctx, func(context.Context) (func(context.Context), error) {
		since := d.now().Add(-max(d.cfg.SweepEvery, 0))
		return func(ctx context.Context) {
			var wg sync.WaitGroup
			wg.Go(func() { d.checkSamples(ctx) })
			wg.Go(func() { d.sweepLoop(ctx, since) })
			wg.Wait()
		}, nil
	})
}

// Stop stops the detector and waits. Safe to call twice.
func (d *Detector) Stop() {
	d.base.Stop()
}

// checkSamples checks the sampled keys, those waiting together in one
// statement.
func (d *Detector) checkSamples(ctx context.Context) {
	for {
		var keys []Key
		select {
		case <-ctx.Done():
			return
		case k := <-d.samples:
			keys = append(keys, k)
		}
	more:
		for len(keys) < d.cfg.BatchSize {
			select {
			case k := <-d.samples:
				keys = append(keys, k)
			default:
				break more
			}
		}
		drifted, err := Detect(ctx, d.pool, keys, d.now().Add(-d.cfg.Window))
		if err != nil {
			if ctx.Err() == nil {
				d.logger.Warn("corrections_sample_failed", "error", err.Error())
			}
			continue
		}
		if len(drifted) > 0 {
			d.found.WithLabelValues("sample").Add(float64(len(drifted)))
			d.batcher.Enqueue(drifted...)
		}
		d.swept.Fire()
	}
}

func (d *Detector) sweepLoop(ctx context.Context, since time.Time) {
	if d.cfg.SweepEvery < 0 {
		return
	}
	t := time.NewTicker(d.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next, err := d.Sweep(ctx, since)
		if err != nil {
			if ctx.Err() == nil {
				d.logger.Warn("corrections_sweep_failed", "error", err.Error())
			}
			continue
		}
		since = next
	}
}

// changedSQL lists the properties whose events the projector applied
// since $1 (the applied records' BRIN index on applied_at finds them).
const changedSQL = `
	SELECT DISTINCT e.org_id, e.property_id
	FROM projector_applied a JOIN events e ON e.org_id = a.org_id AND e.seq = a.event_seq
	WHERE a.applied_at >= $1 AND e.property_id IS NOT NULL`

// Sweep reconciles every property the projector changed since since and
// queues the corrections of what drifted; it returns where the next sweep
// starts (a little before this one began, so nothing falls between).
func (d *Detector) Sweep(ctx context.Context, since time.Time) (time.Time, error) {
	start := d.now()
	rows, err := d.pool.Query(ctx, changedSQL, since)
	if err != nil {
		return since, fmt.Errorf("sweep: %w", postgres.Translate(err))
	}
	type prop struct{ org, id domain.ID }
	var props []prop
	for rows.Next() {
		var p prop
		if err := rows.Scan(&p.org, &p.id); err != nil {
			rows.Close()
			return since, fmt.Errorf("sweep: %w", err)
		}
		props = append(props, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return since, fmt.Errorf("sweep: %w", postgres.Translate(err))
	}
	for _, p := range props {
		n, err := d.Fix(ctx, &p.org, &p.id, "sweep")
		if err != nil {
			return since, err
		}
		if n > 0 {
			d.logger.Info("corrections_sweep_found", "org_id", p.org.String(), "property_id", p.id.String(), "mismatches", n)
		}
	}
	d.swept.Fire()
	return start.Add(-time.Second), nil
}

// Fix reconciles the scope (nil org: everything) and queues a correction
// for every property day (or month) that differs; it returns the
// mismatches found. source labels the detection metric.
func (d *Detector) Fix(ctx context.Context, org, property *domain.ID, source string) (int64, error) {
	res, err := d.rec.Each(ctx, org, property, func(m Mismatch) {
		d.batcher.Enqueue(Key{m.OrgID, m.PropertyID, m.Date})
	})
	if err != nil {
		return 0, err
	}
	d.found.WithLabelValues(source).Add(float64(res.Mismatches))
	return res.Mismatches, nil
}
