package partitions

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports the partition load, refreshed by Run: the catalog and
// statistics queries run on the refresh, never on a scrape.
type Metrics struct {
	db     DB
	logger *slog.Logger

	mu    sync.Mutex
	parts []Partition

	rows, bytes, scans, spread *prometheus.Desc
}

// NewMetrics makes the collector; register it and call Run.
func NewMetrics(db DB, logger *slog.Logger) *Metrics {
	part := []string{"table", "partition"}
	return &Metrics{
		db: db, logger: logger,
		rows:   prometheus.NewDesc("hmp_partition_rows", "Live rows of a hash partition by org_id (statistics estimate).", part, nil),
		bytes:  prometheus.NewDesc("hmp_partition_bytes", "Size of a hash partition with its indexes and TOAST.", part, nil),
		scans:  prometheus.NewDesc("hmp_partition_scans_total", "Scans of a hash partition since the statistics reset, by kind (seq, idx).", append(part, "kind"), nil),
		spread: prometheus.NewDesc("hmp_partition_spread", "Largest partition over the mean partition of a table, by measure (rows, bytes); 1 is even.", []string{"table", "measure"}, nil),
	}
}

// Refresh reads the partitions' load once.
func (m *Metrics) Refresh(ctx context.Context) error {
	parts, err := Inspect(ctx, m.db)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.parts = parts
	m.mu.Unlock()
	return nil
}

// Run refreshes every interval until ctx ends.
func (m *Metrics) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("partition_metrics_failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.rows
	ch <- m.bytes
	ch <- m.scans
	ch <- m.spread
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	parts := m.parts
	m.mu.Unlock()
	for _, p := range parts {
		ch <- prometheus.MustNewConstMetric(m.rows, prometheus.GaugeValue, float64(p.Rows), p.Table, p.Partition)
		ch <- prometheus.MustNewConstMetric(m.bytes, prometheus.GaugeValue, float64(p.Bytes), p.Table, p.Partition)
		ch <- prometheus.MustNewConstMetric(m.scans, prometheus.CounterValue, float64(p.SeqScans), p.Table, p.Partition, "seq")
		ch <- prometheus.MustNewConstMetric(m.scans, prometheus.CounterValue, float64(p.IdxScans), p.Table, p.Partition, "idx")
	}
	for _, s := range Spreads(parts) {
		ch <- prometheus.MustNewConstMetric(m.spread, prometheus.GaugeValue, s.RowsSpread, s.Table, "rows")
		ch <- prometheus.MustNewConstMetric(m.spread, prometheus.GaugeValue, s.SizeSpread, s.Table, "bytes")
	}
}
