package dashboard

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The sampler turns a real registry's counters and histograms into rates
// and quantiles over the interval between two samples.
func TestSampler(t *testing.T) {
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_http_requests_total"}, []string{"route", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hmp_http_request_duration_seconds",
		Buckets: []float64{.01, .1, 1}}, []string{"route"})
	hits := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_cache_hits_total"}, []string{"tier"})
	misses := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_cache_misses_total"}, []string{"tier"})
	reg.MustRegister(reqs, dur, hits, misses)
	s := newSampler(Config{Gatherer: reg, Pool: func() (int32, int32) { return 5, 20 }})
	t0 := time.Unix(1000, 0)
	first := s.sample(t0)
	if first.WritesPerSec != nil || *first.PoolUsage != 0.25 {
		t.Fatalf("first sample: %+v", first)
	}
	reqs.WithLabelValues("POST /v1/finance/revenues", "201").Add(20)
	reqs.WithLabelValues("GET /v1/reports/daily-report", "200").Add(40)
	reqs.WithLabelValues("GET /v1/reports/daily-report", "503").Add(2)
	reqs.WithLabelValues("GET /metrics", "200").Add(100) // not the API
	for range 90 {
		dur.WithLabelValues("GET /v1/reports/daily-report").Observe(0.005)
	}
	for range 10 {
		dur.WithLabelValues("GET /v1/reports/daily-report").Observe(0.5)
	}
	hits.WithLabelValues("memory").Add(30)
	hits.WithLabelValues("redis").Add(10)
	misses.WithLabelValues("memory").Add(70)
	s2 := s.sample(t0.Add(2 * time.Second))
	if *s2.WritesPerSec != 10 || *s2.ReadsPerSec != 21 || *s2.ErrorsPerSec != 1 {
		t.Fatalf("rates: writes %v reads %v errors %v", *s2.WritesPerSec, *s2.ReadsPerSec, *s2.ErrorsPerSec)
	}
	if p50 := *s2.LatencyP50Ms; math.Abs(p50-50.0/9) > 0.01 { // rank 50 of 90 in (0, 10 ms]
		t.Fatalf("p50 %v ms", p50)
	}
	if p95 := *s2.LatencyP95Ms; math.Abs(p95-(100+900*0.5)) > 0.01 { // rank 95: half into (100 ms, 1 s]
		t.Fatalf("p95 %v ms", p95)
	}
	if *s2.CacheHitRate != 0.4 {
		t.Fatalf("hit rate %v", *s2.CacheHitRate)
	}
	s3 := s.sample(t0.Add(3 * time.Second))
	if *s3.WritesPerSec != 0 || s3.LatencyP50Ms != nil {
		t.Fatalf("an idle interval: %+v", s3)
	}
}
