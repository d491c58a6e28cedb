package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/startstop"
)

// PoolCollector exports a pgxpool's statistics at every scrape, labelled
// pool=name: hmp_db_pool_{acquired,idle,total,max}_conns and the
// cumulative acquisitions and their wait.
type PoolCollector struct {
	name string
	pool *pgxpool.Pool

	acquired, idle, total, maxConns *prometheus.Desc
	acquires, waited, waitSeconds   *prometheus.Desc
}

// NewPoolCollector returns a collector of pool's statistics.
func NewPoolCollector(name string, pool *pgxpool.Pool) *PoolCollector {
	l := prometheus.Labels{"pool": name}
	d := func(n, help string) *prometheus.Desc { return prometheus.NewDesc(n, help, nil, l) }
	return &PoolCollector{name: name, pool: pool,
		acquired: d("hmp_db_pool_acquired_conns", "Connections of the pool in use."),
		idle:     d("hmp_db_pool_idle_conns", "Open connections of the pool not in use."),
		total:    d("hmp_db_pool_total_conns", "Open connections of the pool (in use, idle or being opened)."),
		maxConns: d("hmp_db_pool_max_conns", "Most connections the pool may open."),
		acquires: d("hmp_db_pool_acquires_total", "Connections acquired from the pool."),
		waited: d("hmp_db_pool_acquire_waits_total",
			"Acquisitions that had to wait for a connection (none was idle)."),
		waitSeconds: d("hmp_db_pool_acquire_wait_seconds_total",
			"Time spent waiting to acquire connections; its rate over the acquisitions' is the mean wait."),
	}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.maxConns, c.acquires, c.waited, c.waitSeconds} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	n := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.total, float64(s.TotalConns()))
	g(c.maxConns, float64(s.MaxConns()))
	n(c.acquires, float64(s.AcquireCount()))
	n(c.waited, float64(s.EmptyAcquireCount()))
	n(c.waitSeconds, s.AcquireDuration().Seconds())
}

// A Probe reads one figure that costs a round trip (a query, a request to
// the bus), so it is sampled in the background rather than at scrape.
type Probe struct {
	// Name and Help of the metric; Counter: the figure only grows.
	Name, Help string
	Counter    bool
	// Labels are constant labels of the metric (say consumer="reports").
	Labels prometheus.Labels
	Read   func(ctx context.Context) (float64, error)
}

// Sampler reads its probes every interval and exports their last values.
// A probe that fails keeps its last value and counts a failure.
type Sampler struct {
	probes   []Probe
	descs    []*prometheus.Desc
	interval time.Duration
	logger   *slog.Logger
	failures *prometheus.CounterVec

	mu     sync.Mutex
	values []float64
	read   []bool
	base   startstop.Base
}

// NewSampler returns a stopped sampler of probes every interval (default
// 5 s), registered on reg (may be nil).
func NewSampler(probes []Probe, interval time.Duration, logger *slog.Logger, reg prometheus.Registerer) *Sampler {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sampler{probes: probes, interval: interval, logger: logger,
		values: make([]float64, len(probes)), read: make([]bool, len(probes)),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_telemetry_probe_failures_total",
			Help: "Background metric samples (database locks, bus backlog) that failed, by metric."}, []string{"metric"})}
	for _, p := range probes {
		s.descs = append(s.descs, prometheus.NewDesc(p.Name, p.Help, nil, p.Labels))
	}
	if reg != nil {
		reg.MustRegister(s, s.failures)
	}
	return s
}

// Describe implements prometheus.Collector.
func (s *Sampler) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the probes read at least once.
func (s *Sampler) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.probes {
		if !s.read[i] {
			continue
		}
		t := prometheus.GaugeValue
		if p.Counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(s.descs[i], t, s.values[i])
	}
}

// Sample reads every probe once (Start does so every interval).
func (s *Sampler) Sample(ctx context.Context) {
	for i, p := range s.probes {
		rctx, cancel := context.WithTimeout(ctx, max(s.interval, time.Second))
		v, err := p.Read(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.failures.WithLabelValues(p.Name).Inc()
				s.logger.Debug("telemetry_probe_failed", "metric", p.Name, "error", err.Error())
			}
			continue
		}
		s.mu.Lock()
		s.values[i], s.read[i] = v, true
		s.mu.Unlock()
	}
}

// Start samples every interval until Stop. Safe to call twice.
func (s *Sampler) Start(ctx context.Context) error {
	s.base.Start(ctx, func(ctx context.Context) {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			s.Sample(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return nil
}

// Stop ends the sampling. Safe to call twice.
func (s *Sampler) Stop() {
	s.base.Stop()
}

// dbStats reads the current database's lock figures in one round trip.
const dbStatsSQL = `
SELECT (SELECT coalesce(deadlocks, 0) FROM pg_stat_database WHERE datname = current_database()),
       count(*) FILTER (WHERE wait_event_type = 'Lock'),
       count(*) FILTER (WHERE state = 'active')
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`

// DatabaseProbes returns the probes of the database's lock figures:
// hmp_db_deadlocks_total (pg_stat_database), hmp_db_lock_waiting_sessions
// and hmp_db_active_sessions (pg_stat_activity). One query serves the
// three: the first probe reads it, the others take its result.
func DatabaseProbes(pool *pgxpool.Pool) []Probe {
	var (
		mu                       sync.Mutex
		deadlocks, waits, active int64
		fresh                    bool // the last read succeeded
	)
	read := func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		fresh = false
		if err := pool.QueryRow(ctx, dbStatsSQL).Scan(&deadlocks, &waits, &active); err != nil {
			return fmt.Errorf("database lock stats: %w", err)
		}
		fresh = true
		return nil
	}
	last := func(v *int64) func(context.Context) (float64, error) {
		return func(context.Context) (float64, error) {
			mu.Lock()
			defer mu.Unlock()
			if !fresh {
				return 0, fmt.Errorf("database lock stats not read")
			}
			return float64(*v), nil
		}
	}
	return []Probe{
		{Name: "hmp_db_deadlocks_total", Help: "Deadlocks PostgreSQL detected in this database (pg_stat_database, sampled).", Counter: true,
			Read: func(ctx context.Context) (float64, error) {
				if err := read(ctx); err != nil {
					return 0, err
				}
				return last(&deadlocks)(ctx)
			}},
		{Name: "hmp_db_lock_waiting_sessions", Help: "Sessions of this database waiting on a lock (pg_stat_activity, sampled).", Read: last(&waits)},
		{Name: "hmp_db_active_sessions", Help: "Sessions of this database running a statement (pg_stat_activity, sampled).", Read: last(&active)},
	}
}
