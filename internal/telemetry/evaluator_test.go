package telemetry

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"hmp/internal/clocktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a registry holding the metrics the rules read, under the names
// the other packages register.
type world struct {
	reg        *prometheus.Registry
	pending    prometheus.Gauge
	unpub      prometheus.Gauge
	consumed   *prometheus.CounterVec
	batchSecs  prometheus.Histogram
	hits, miss *prometheus.CounterVec
	acquired   prometheus.Gauge
	maxConns   prometheus.Gauge
	waiting    prometheus.Gauge
	active     prometheus.Gauge
	query      *prometheus.HistogramVec
	corrSize   prometheus.Histogram
	corrSecs   prometheus.Histogram
	corrErrs   prometheus.Counter
}

func newWorld() *world {
	w := &world{reg: prometheus.NewRegistry(),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hmp_consumer_pending", ConstLabels: prometheus.Labels{"consumer": "reports"}}),
		unpub:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "hmp_outbox_unpublished"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_consumer_messages_total"},
			[]string{"consumer", "result"}),
		batchSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hmp_projector_batch_seconds", Buckets: []float64{0.5, 1, 2, 4, 8}}),
		hits:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_cache_hits_total"}, []string{"tier"}),
		miss:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_cache_misses_total"}, []string{"tier"}),
		acquired:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "hmp_db_pool_acquired_conns", ConstLabels: prometheus.Labels{"pool": "primary"}}),
		maxConns:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "hmp_db_pool_max_conns", ConstLabels: prometheus.Labels{"pool": "primary"}}),
		waiting:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "hmp_db_lock_waiting_sessions"}),
		active:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "hmp_db_active_sessions"}),
		query: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hmp_db_query_seconds", Buckets: []float64{0.1, 0.5, 1, 2, 5}},
			[]string{"label"}),
		corrSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hmp_corrections_batch_size", Buckets: []float64{10, 100, 1000}}),
		corrSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hmp_corrections_batch_seconds", Buckets: []float64{1, 5, 10}}),
		corrErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_corrections_errors_total"}),
	}
	w.reg.MustRegister(w.pending, w.unpub, w.consumed, w.batchSecs, w.hits, w.miss, w.acquired, w.maxConns,
		w.waiting, w.active, w.query, w.corrSize, w.corrSecs, w.corrErrs)
	w.maxConns.Set(10)
	return w
}

func testEvaluator(t *testing.T, w *world, c *clocktest.Clock, f func(*Config)) *Evaluator {
	cfg := Config{Interval: time.Second, Window: time.Minute, For: 30 * time.Second, History: 3, Now: c.Now}
	if f != nil {
		f(&cfg)
	}
	return NewEvaluator(cfg, Rules(cfg), w.reg, nil, nil)
}

func evaluate(t *testing.T, e *Evaluator) {
	t.Helper()
	if err := e.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// byRule returns the listed alerts of rule.
func byRule(e *Evaluator, rule string) []Alert {
	var out []Alert
	for _, a := range e.Alerts() {
		if a.Rule == rule {
			out = append(out, a)
		}
	}
	return out
}

func TestEvaluatorLifecycle(t *testing.T) {
	t.Parallel()
	w, c := newWorld(), clocktest.New(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	e := testEvaluator(t, w, c, nil)
	changes, cancel := e.Subscribe(16)
	defer cancel()

	w.pending.Set(600)
	w.unpub.Set(400) // 1,000: at the threshold, not over it
	evaluate(t, e)
	if got := e.Alerts(); len(got) != 0 {
		t.Fatalf("alerts at the threshold: %+v", got)
	}

	w.unpub.Set(401)
	c.Advance(time.Second)
	evaluate(t, e)
	got := byRule(e, "HMPBusBacklogHigh")
	if len(got) != 1 || got[0].State != StatePending || got[0].Value != 1001 || got[0].Threshold != 1000 {
		t.Fatalf("over the threshold: %+v, want one pending alert of value 1001", got)
	}
	id := got[0].ID
	if ch := <-changes; ch.From != "" || ch.Alert.State != StatePending || ch.Alert.ID != id {
		t.Fatalf("first change %+v", ch)
	}

	c.Advance(29 * time.Second) // 29 s of the 30 s for
	evaluate(t, e)
	if got := byRule(e, "HMPBusBacklogHigh"); got[0].State != StatePending {
		t.Fatalf("before for elapsed: %+v", got)
	}
	c.Advance(time.Second)
	w.pending.Set(5000)
	evaluate(t, e)
	got = byRule(e, "HMPBusBacklogHigh")
	if len(got) != 1 || got[0].State != StateFiring || got[0].ID != id || got[0].Value != 5401 || got[0].FiredAt == nil {
		t.Fatalf("after for: %+v, want firing %s at 5401", got, id)
	}
	if ch := <-changes; ch.From != StatePending || ch.Alert.State != StateFiring {
		t.Fatalf("second change %+v", ch)
	}

	acked, err := e.Ack(id, "alice")
	if err != nil || !acked.Acknowledged || acked.AcknowledgedBy != "alice" {
		t.Fatalf("ack = %+v, %v", acked, err)
	}
	if _, err := e.Ack("nope", "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack of an unknown id: %v", err)
	}

	w.pending.Set(0)
	c.Advance(time.Second)
	evaluate(t, e)
	got = byRule(e, "HMPBusBacklogHigh")
	if len(got) != 1 || got[0].State != StateResolved || !got[0].Acknowledged || got[0].ResolvedAt == nil || got[0].Value != 5401 {
		t.Fatalf("after recovery: %+v, want resolved, acknowledged, last value 5401", got)
	}
	if ch := <-changes; ch.From != StateFiring || ch.Alert.State != StateResolved {
		t.Fatalf("third change %+v", ch)
	}

	// Again: a new activation, a new id, not acknowledged.
	w.pending.Set(2000)
	c.Advance(time.Second)
	evaluate(t, e)
	got = byRule(e, "HMPBusBacklogHigh")
	if len(got) != 2 || got[0].State != StatePending || got[0].ID == id || got[0].Acknowledged || got[1].ID != id {
		t.Fatalf("second activation: %+v", got)
	}
	// A pending alert that clears leaves no trace.
	w.pending.Set(0)
	c.Advance(time.Second)
	evaluate(t, e)
	if got := byRule(e, "HMPBusBacklogHigh"); len(got) != 1 || got[0].ID != id {
		t.Fatalf("after a pending alert cleared: %+v", got)
	}
}

func TestEvaluatorHistoryBounded(t *testing.T) {
	t.Parallel()
	if f := (Config{For: -1}).WithDefaults().WithDefaults().For; f >= 0 {
		t.Fatalf("a negative for (fire at once) became %s after defaults twice", f)
	}
	w, c := newWorld(), clocktest.New(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	e := testEvaluator(t, w, c, func(c *Config) { c.For = -1 })
	var ids []string
	for range 5 {
		w.acquired.Set(9)
		c.Advance(time.Second)
		evaluate(t, e)
		a := byRule(e, "HMPDBPoolSaturated")
		if len(a) == 0 || a[0].State != StateFiring {
			t.Fatalf("for 0 fires at once: %+v", a)
		}
		ids = append(ids, a[0].ID)
		w.acquired.Set(1)
		c.Advance(time.Second)
		evaluate(t, e)
	}
	got := byRule(e, "HMPDBPoolSaturated")
	if len(got) != 3 {
		t.Fatalf("history holds %d alerts, want 3 (History)", len(got))
	}
	for i, a := range got { // newest first
		if a.ID != ids[4-i] || a.State != StateResolved {
			t.Fatalf("history[%d] = %s %s, want %s resolved", i, a.ID, a.State, ids[4-i])
		}
	}
}

// Each rule computes the value its PromQL means, over the window's
// increase, and alerts on the right side of its threshold.
func TestRuleValues(t *testing.T) {
	t.Parallel()
	w, c := newWorld(), clocktest.New(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	e := testEvaluator(t, w, c, func(c *Config) { c.For = -1 })
	// Traffic before the window's start does not count.
	w.consumed.WithLabelValues("reports", "acked").Add(1000)
	w.consumed.WithLabelValues("reports", "retried").Add(0)
	w.consumed.WithLabelValues("reports", "dead_lettered").Add(0)
	w.hits.WithLabelValues("memory").Add(1000)
	w.miss.WithLabelValues("memory").Add(0)
	w.hits.WithLabelValues("redis").Add(0)
	w.miss.WithLabelValues("redis").Add(0)
	w.query.WithLabelValues("fast") // a series first seen inside the window has no rate yet, as in Prometheus
	w.query.WithLabelValues("slow")
	evaluate(t, e)

	c.Advance(10 * time.Second)
	w.consumed.WithLabelValues("reports", "acked").Add(90)
	w.consumed.WithLabelValues("reports", "retried").Add(8)
	w.consumed.WithLabelValues("reports", "dead_lettered").Add(2) // 10 of 100: 10 %
	for range 9 {
		w.batchSecs.Observe(0.2)
	}
	w.batchSecs.Observe(3) // p95 falls in (2, 4]
	w.hits.WithLabelValues("memory").Add(60)
	w.miss.WithLabelValues("memory").Add(40) // 60 %: under 70 %
	w.hits.WithLabelValues("redis").Add(9)
	w.miss.WithLabelValues("redis").Add(1) // 90 %
	w.acquired.Set(8)                      // 80 %: not over
	w.waiting.Set(3)
	w.active.Set(20) // 15 %
	for range 20 {
		w.query.WithLabelValues("fast").Observe(0.05)
		w.query.WithLabelValues("slow").Observe(1.5)
	}
	w.corrSize.Observe(150)
	w.corrSize.Observe(250) // mean 200
	w.corrSecs.Observe(0.5)
	w.corrSecs.Observe(0.5)
	w.corrErrs.Inc() // 1 per 2 batches
	evaluate(t, e)

	want := map[string]struct {
		labels map[string]string
		lo, hi float64
	}{
		"HMPBusErrorRateHigh":        {nil, 0.1, 0.1},
		"HMPBusProcessingSlow":       {nil, 2, 4},
		"HMPCacheHitRateLow":         {map[string]string{"tier": "memory"}, 0.6, 0.6},
		"HMPDBLockContention":        {nil, 0.15, 0.15},
		"HMPDBQuerySlow":             {map[string]string{"label": "slow"}, 1, 2},
		"HMPCorrectionBatchLarge":    {nil, 200, 200},
		"HMPCorrectionErrorRateHigh": {nil, 0.5, 0.5},
	}
	got := map[string]Alert{}
	for _, a := range e.Alerts() {
		if _, dup := got[a.Rule]; dup {
			t.Errorf("rule %s alerts twice: %+v", a.Rule, e.Alerts())
		}
		got[a.Rule] = a
	}
	for rule, w := range want {
		a, ok := got[rule]
		if !ok {
			t.Errorf("%s did not fire", rule)
			continue
		}
		if a.Value < w.lo-1e-9 || a.Value > w.hi+1e-9 || a.State != StateFiring {
			t.Errorf("%s = %v (%s), want within [%v, %v] firing", rule, a.Value, a.State, w.lo, w.hi)
		}
		if len(a.Labels) != len(w.labels) || (w.labels != nil && a.Labels[firstKey(w.labels)] != w.labels[firstKey(w.labels)]) {
			t.Errorf("%s labels %v, want %v", rule, a.Labels, w.labels)
		}
	}
	for rule := range got {
		if _, ok := want[rule]; !ok {
			t.Errorf("%s fired: %+v", rule, got[rule])
		}
	}
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

func TestBucketQuantile(t *testing.T) {
	t.Parallel()
	inf := math.Inf(1)
	for _, tc := range []struct {
		q       float64
		buckets []bucket
		want    float64
	}{
		{0.5, []bucket{{1, 5}, {2, 10}, {inf, 10}}, 1},
		{0.75, []bucket{{1, 5}, {2, 10}, {inf, 10}}, 1.5},
		{0.95, []bucket{{1, 0}, {2, 0}, {inf, 10}}, 2}, // in +Inf: the highest finite bound
		{0.5, []bucket{{1, 0}, {inf, 0}}, math.NaN()},
	} {
		got := bucketQuantile(tc.q, tc.buckets)
		if got != tc.want && !(math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("quantile %v of %v = %v, want %v", tc.q, tc.buckets, got, tc.want)
		}
	}
}

func TestEvaluatorStartStop(t *testing.T) {
	t.Parallel()
	w := newWorld()
	e := NewEvaluator(Config{Interval: 10 * time.Millisecond, Window: time.Second, For: -1}, nil, w.reg, nil, nil)
	w.acquired.Set(10)
	e.rules = Rules(e.cfg)
	changes, _ := e.Subscribe(4)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = e.Start(context.Background())
	ch := <-changes
	if ch.Alert.Rule != "HMPDBPoolSaturated" {
		t.Fatalf("first change %+v", ch)
	}
	e.Stop()
	e.Stop()
	for range changes { // closed by Stop
	}
}
