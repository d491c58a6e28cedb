package dashboard

import (
	"math"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"hmp/internal/measure"
)

// Sample is one point of every chart, and the alerts and settings then.
// A figure that cannot be computed (no traffic, metric absent) is null.
type Sample struct {
	At time.Time `json:"at"`
	// WritesPerSec and ReadsPerSec are API requests per second (writes:
	// POST, PUT, PATCH, DELETE under /v1; reads: GET).
	WritesPerSec *float64 `json:"writesPerSec"`
	ReadsPerSec  *float64 `json:"readsPerSec"`
	// ErrorsPerSec are 5xx answers per second.
	ErrorsPerSec *float64 `json:"errorsPerSec"`
	// LatencyP50Ms and LatencyP95Ms are API latency quantiles over the
	// interval.
	LatencyP50Ms *float64 `json:"latencyP50Ms"`
	LatencyP95Ms *float64 `json:"latencyP95Ms"`
	// LagP95Ms is the 95th percentile of the write-to-report freshness
	// over the interval.
	LagP95Ms *float64 `json:"lagP95Ms"`
	// Backlog is the events waiting: the bus backlog when exported, else
	// the events this instance's relay published and its projector has
	// not yet settled.
	Backlog *float64 `json:"backlog"`
	// OutboxAgeSec is how long the oldest unpublished event waits.
	OutboxAgeSec *float64 `json:"outboxAgeSec"`
	// CacheHitRate is report cache hits per lookup (0..1).
	CacheHitRate *float64 `json:"cacheHitRate"`
	// PoolUsage is database connections in use per pool size (0..1).
	PoolUsage *float64 `json:"poolUsage"`
	PoolInUse *int32   `json:"poolInUse"`
	PoolSize  *int32   `json:"poolSize"`
	// CorrectionsPerSec are projection rows corrected per second;
	// CorrectionsQueued the corrections waiting.
	CorrectionsPerSec *float64 `json:"correctionsPerSec"`
	CorrectionsQueued *float64 `json:"correctionsQueued"`
	Alerts            []Alert  `json:"alerts"`
	Settings          any      `json:"settings"`
}

// reading is what one gather yields for the deltas.
type reading struct {
	at                      time.Time
	writes, reads, errors   float64
	latency                 histogram
	lag                     histogram
	hits, lookups           float64
	corrections             float64
	published, settled      float64
	backlog, outbox, queued *float64
}

type histogram map[float64]float64 // upper bound → cumulative count

// sampler turns successive gathers into per-interval figures.
type sampler struct {
	cfg  Config
	prev *reading
}

func newSampler(cfg Config) *sampler { return &sampler{cfg: cfg} }

func (s *sampler) sample(now time.Time) Sample {
	out := Sample{At: now, Alerts: []Alert{}}
	if s.cfg.Alerts != nil {
		out.Alerts = append(out.Alerts, s.cfg.Alerts.Alerts()...)
	}
	if s.cfg.Settings != nil {
		out.Settings = s.cfg.Settings()
	}
	if s.cfg.Pool != nil {
		used, size := s.cfg.Pool()
		out.PoolInUse, out.PoolSize = &used, &size
		if size > 0 {
			out.PoolUsage = ptr(float64(used) / float64(size))
		}
	}
	cur := s.read(now)
	if cur == nil {
		return out
	}
	out.Backlog, out.OutboxAgeSec, out.CorrectionsQueued = cur.backlog, cur.outbox, cur.queued
	prev := s.prev
	s.prev = cur
	if prev == nil {
		return out
	}
	secs := cur.at.Sub(prev.at).Seconds()
	if secs <= 0 {
		return out
	}
	out.WritesPerSec = ptr(max(cur.writes-prev.writes, 0) / secs)
	out.ReadsPerSec = ptr(max(cur.reads-prev.reads, 0) / secs)
	out.ErrorsPerSec = ptr(max(cur.errors-prev.errors, 0) / secs)
	out.CorrectionsPerSec = ptr(max(cur.corrections-prev.corrections, 0) / secs)
	if q := quantile(cur.latency, prev.latency, 0.5); q != nil {
		out.LatencyP50Ms = ptr(*q * 1000)
		out.LatencyP95Ms = ptr(*quantile(cur.latency, prev.latency, 0.95) * 1000)
	}
	if q := quantile(cur.lag, prev.lag, 0.95); q != nil {
		out.LagP95Ms = ptr(*q * 1000)
	}
	if l := cur.lookups - prev.lookups; l > 0 {
		out.CacheHitRate = ptr(min(max((cur.hits-prev.hits)/l, 0), 1))
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// read gathers the registry (nil when it cannot).
func (s *sampler) read(now time.Time) *reading {
	if s.cfg.Gatherer == nil {
		return nil
	}
	mfs, err := s.cfg.Gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		s.cfg.Logger.Warn("dashboard_gather_failed", "error", err.Error())
		return nil
	}
	r := &reading{at: now, latency: histogram{}, lag: histogram{}}
	var memHits, memMisses, allHits float64
	var haveMem bool
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "hmp_http_requests_total":
				route, code := label(m, "route"), label(m, "code")
				method, path, _ := strings.Cut(route, " ")
				if !strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/v1/admin/") {
					continue
				}
				v := m.GetCounter().GetValue()
				switch method {
				case "GET", "HEAD":
					r.reads += v
				case "POST", "PUT", "PATCH", "DELETE":
					r.writes += v
				}
				if strings.HasPrefix(code, "5") {
					r.errors += v
				}
			case "hmp_http_request_duration_seconds":
				if _, path, _ := strings.Cut(label(m, "route"), " "); strings.HasPrefix(path, "/v1/") && !strings.HasPrefix(path, "/v1/admin/") {
					addHistogram(r.latency, m.GetHistogram())
				}
			case "hmp_projector_event_lag_seconds":
				addHistogram(r.lag, m.GetHistogram())
			case "hmp_cache_hits_total":
				v := m.GetCounter().GetValue()
				allHits += v
				if label(m, "tier") == "memory" {
					memHits += v
					haveMem = true
				}
			case "hmp_cache_misses_total":
				if label(m, "tier") == "memory" {
					memMisses += m.GetCounter().GetValue()
					haveMem = true
				}
			case "hmp_corrections_applied_total":
				r.corrections += m.GetCounter().GetValue()
			case "hmp_corrections_queue_size":
				r.queued = ptr(m.GetGauge().GetValue())
			case "hmp_relay_published_total":
				r.published += m.GetCounter().GetValue()
			case "hmp_projector_events_total":
				if res := label(m, "result"); res == "applied" || res == "duplicate" || res == "dead_lettered" {
					r.settled += m.GetCounter().GetValue()
				}
			case "hmp_outbox_oldest_unpublished_seconds":
				r.outbox = ptr(m.GetGauge().GetValue())
			case "hmp_bus_backlog", "hmp_consumer_pending":
				b := m.GetGauge().GetValue()
				if r.backlog != nil {
					b += *r.backlog
				}
				r.backlog = &b
			}
		}
	}
	if haveMem {
		r.hits, r.lookups = allHits, memHits+memMisses
	}
	if r.backlog == nil && r.published > 0 {
		r.backlog = ptr(max(r.published-r.settled, 0))
	}
	return r
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func addHistogram(h histogram, m *dto.Histogram) {
	if m == nil {
		return
	}
	for _, b := range m.GetBucket() {
		h[b.GetUpperBound()] += float64(b.GetCumulativeCount())
	}
	h[math.Inf(1)] += float64(m.GetSampleCount())
}

// quantile estimates quantile q of the observations between prev and cur
// as Prometheus' histogram_quantile does (measure's); nil when there were
// none.
func quantile(cur, prev histogram, q float64) *float64 {
	if cur[math.Inf(1)]-prev[math.Inf(1)] <= 0 { // none, or a restart between the samples
		return nil
	}
	var d measure.BucketHistogram
	for b := range cur {
		d.Bounds = append(d.Bounds, b)
	}
	sort.Float64s(d.Bounds)
	for _, b := range d.Bounds {
		d.Cumulative = append(d.Cumulative, cur[b]-prev[b])
	}
	v := d.Quantile(q)
	if math.IsNaN(v) {
		return nil
	}
	return ptr(v)
}
