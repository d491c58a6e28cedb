package cache

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	tierMemory = "memory"
	tierRedis  = "redis"

	// TTL classes (the class label of hits and misses): a report touching
	// an active date, or one wholly in the past (see Config.ActiveDays).
	classActive     = "active"
	classHistorical = "historical"
)

type metrics struct {
	hits, misses, evictions *prometheus.CounterVec
	// memHits and memMisses are hits' and misses' memory-tier series,
	// looked up once (a hit then pays no label hashing).
	memHits, memMisses byClass
	fresh              prometheus.Counter
	invalidations      prometheus.Counter
	lag                prometheus.Histogram
	entries            prometheus.Collector
}

// byClass holds one counter per TTL class.
type byClass struct{ active, historical prometheus.Counter }

func (b byClass) of(active bool) prometheus.Counter {
	if active {
		return b.active
	}
	return b.historical
}

func newByClass(v *prometheus.CounterVec, tier string) byClass {
	return byClass{active: v.WithLabelValues(tier, classActive), historical: v.WithLabelValues(tier, classHistorical)}
}

func newMetrics(c *Cache) metrics {
	m := metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_cache_hits_total",
			Help: "Report reads answered by a cache tier (memory, redis), by TTL class (active, historical)."}, []string{"tier", "class"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_cache_misses_total",
			Help: "Report reads a cache tier (memory, redis) could not answer, by TTL class (active, historical)."}, []string{"tier", "class"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_cache_evictions_total",
			Help: "Entries the in-process tier dropped for size or age."}, []string{"tier"}),
		fresh: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_cache_fresh_reads_total",
			Help: "Reads with a consistency token: they skip the tiers and refresh them."}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_cache_invalidations_total",
			Help: "Property changes applied to this instance's cache watermarks."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hmp_cache_invalidation_lag_seconds",
			Help:    "From a projector commit to its invalidation applied on this instance.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		entries: entriesCollector{c: c, desc: prometheus.NewDesc("hmp_cache_entries",
			"Entries held by a cache tier (redis: keys of its database).", []string{"tier"}, nil)},
	}
	m.memHits, m.memMisses = newByClass(m.hits, tierMemory), newByClass(m.misses, tierMemory)
	return m
}

// exportZeros exports every tier and class of hits and misses, and the
// evictions, at zero from the start: the hit-rate alert divides hits by
// lookups per tier, and a series that does not exist yet (no hit so far)
// would make a cold cache's 100 % misses evaluate to nothing.
func (m metrics) exportZeros(redis bool) {
	tiers := []string{tierMemory}
	if redis {
		tiers = append(tiers, tierRedis)
	}
	for _, tier := range tiers {
		for _, class := range []string{classActive, classHistorical} {
			m.hits.WithLabelValues(tier, class)
			m.misses.WithLabelValues(tier, class)
		}
	}
	m.evictions.WithLabelValues(tierMemory)
}

func (m metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.hits, m.misses, m.evictions, m.fresh, m.invalidations, m.lag, m.entries}
}

// entriesCollector reads the tiers' sizes at scrape time.
type entriesCollector struct {
	c    *Cache
	desc *prometheus.Desc
}

func (e entriesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- e.desc }

func (e entriesCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(e.desc, prometheus.GaugeValue, float64(e.c.mem.EstimatedSize()), tierMemory)
	if e.c.redis != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if n := e.c.redis.size(ctx); n >= 0 {
			ch <- prometheus.MustNewConstMetric(e.desc, prometheus.GaugeValue, float64(n), tierRedis)
		}
	}
}
