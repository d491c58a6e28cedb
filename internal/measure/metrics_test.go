package measure

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const scrape = `# HELP hmp_projector_event_lag_seconds Freshness.
# TYPE hmp_projector_event_lag_seconds histogram
hmp_projector_event_lag_seconds_bucket{le="0.01"} 10
hmp_projector_event_lag_seconds_bucket{le="0.05"} 90
hmp_projector_event_lag_seconds_bucket{le="0.1"} 99
hmp_projector_event_lag_seconds_bucket{le="+Inf"} 100
hmp_projector_event_lag_seconds_sum 2.5
hmp_projector_event_lag_seconds_count 100
hmp_projector_events_total{result="applied"} 100
hmp_projector_events_total{result="dead_lettered"} 2
http_requests_total{route="GET /v1/x y",status="200"} 7 1700000000000
go_goroutines 12
`

func TestParse(t *testing.T) {
	t.Parallel()
	m, err := Parse(strings.NewReader(scrape))
	if err != nil {
		t.Fatal(err)
	}
	if m[`hmp_projector_events_total{result="applied"}`] != 100 || m["go_goroutines"] != 12 ||
		m[`http_requests_total{route="GET /v1/x y",status="200"}`] != 7 {
		t.Fatalf("parsed %v", m)
	}
	h, ok := m.Buckets("hmp_projector_event_lag_seconds")
	if !ok || len(h.Bounds) != 4 || !math.IsInf(h.Bounds[3], 1) || h.Count != 100 || h.Sum != 2.5 {
		t.Fatalf("histogram %+v", h)
	}
	if _, ok := m.Buckets("nope"); ok {
		t.Fatal("found a histogram that is not there")
	}
	if _, err := Parse(strings.NewReader("novalue\n")); err == nil {
		t.Fatal("accepted a line without a value")
	}

	t.Run("sum adds the series that match", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name  string
			match []string
			want  float64
			ok    bool
		}{
			{"hmp_projector_events_total", nil, 102, true},
			{"hmp_projector_events_total", []string{`result="dead_lettered"`}, 2, true},
			{"hmp_projector_events", nil, 0, false},
			{"http_requests_total", []string{`status="200"`, `route="GET /v1/x y"`}, 7, true},
			{"http_requests_total", []string{`status="500"`}, 0, false},
		} {
			if got, ok := m.Sum(tc.name, tc.match...); got != tc.want || ok != tc.ok {
				t.Errorf("Sum(%s, %v) = %v, %v; want %v, %v", tc.name, tc.match, got, ok, tc.want, tc.ok)
			}
		}
	})

	t.Run("a registry gathers as its exposition parses", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		lag := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lag_seconds", Buckets: []float64{0.01, 0.1}})
		events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "events_total"}, []string{"result"})
		reg.MustRegister(lag, events)
		lag.Observe(0.005)
		lag.Observe(0.5)
		events.WithLabelValues("applied").Add(3)
		g, err := Gather(reg)
		if err != nil {
			t.Fatal(err)
		}
		want := Metrics{
			`lag_seconds_bucket{le="0.01"}`: 1, `lag_seconds_bucket{le="0.1"}`: 1, `lag_seconds_bucket{le="+Inf"}`: 2,
			"lag_seconds_sum": 0.505, "lag_seconds_count": 2, `events_total{result="applied"}`: 3,
		}
		if len(g) != len(want) {
			t.Fatalf("gathered %v, want %v", g, want)
		}
		for k, v := range want {
			if g[k] != v {
				t.Errorf("%s = %v, want %v", k, g[k], v)
			}
		}
	})
}

func TestBucketHistogramSub(t *testing.T) {
	t.Parallel()
	h := BucketHistogram{Bounds: []float64{0.01, 0.05, 0.1, math.Inf(1)}, Cumulative: []float64{10, 90, 99, 100}, Sum: 2.5, Count: 100}
	d, err := h.Sub(BucketHistogram{Bounds: h.Bounds, Cumulative: []float64{10, 10, 10, 10}, Sum: 0.5, Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	if d.Count != 90 || d.Sum != 2 || d.Cumulative[0] != 0 || d.Cumulative[3] != 90 {
		t.Errorf("difference %+v", d)
	}
	if _, err := h.Sub(BucketHistogram{Bounds: []float64{1}}); err == nil {
		t.Error("subtracted histograms of other buckets")
	}
}
