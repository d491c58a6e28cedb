package replicas

import "github.com/prometheus/client_golang/prometheus"

// Metrics exposes the router's metrics to the tests.
func (r *Router) Metrics() TestMetrics { return TestMetrics{r.m} }

// TestMetrics names the router's metrics for tests.
type TestMetrics struct{ m metrics }

// Reads is hmp_db_reads_total{target}.
func (t TestMetrics) Reads(target string) prometheus.Counter {
	return t.m.reads.WithLabelValues(target)
}

// LagBytes is hmp_replica_lag_bytes of the only replica.
func (t TestMetrics) LagBytes(string) prometheus.Collector { return t.m.lagBytes }

// Healthy is hmp_replica_healthy of the only replica.
func (t TestMetrics) Healthy(string) prometheus.Collector { return t.m.healthy }
