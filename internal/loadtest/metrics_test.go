package loadtest

import (
	"math"
	"strings"
	"testing"
	"time"
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
http_requests_total{route="GET /v1/x y",status="200"} 7 1700000000000
go_goroutines 12
`

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	m, err := ParseMetrics(strings.NewReader(scrape))
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
	if _, err := ParseMetrics(strings.NewReader("novalue\n")); err == nil {
		t.Fatal("accepted a line without a value")
	}

	t.Run("quantiles are bucket upper bounds of the difference", func(t *testing.T) {
		t.Parallel()
		earlier := BucketHistogram{Bounds: h.Bounds, Cumulative: []float64{10, 10, 10, 10}, Sum: 0.05, Count: 10}
		d, err := h.Sub(earlier)
		if err != nil {
			t.Fatal(err)
		}
		// 90 observations: 0 ≤ 10 ms, 80 in (10, 50] ms, 9 in (50, 100] ms, 1 above.
		for _, tc := range []struct {
			q    float64
			want float64
		}{{0.5, 0.05}, {0.88, 0.05}, {0.9, 0.1}, {0.98, 0.1}, {0.99, math.Inf(1)}} {
			if got := d.Quantile(tc.q); got != tc.want {
				t.Errorf("q%v = %v, want %v", tc.q, got, tc.want)
			}
		}
		l := d.Latency()
		if l.Count != 90 || l.P50 != 50*time.Millisecond || l.P90 != 100*time.Millisecond || l.P99 != math.MaxInt64 || l.Mean != time.Duration((h.Sum-0.05)/90*1e9) {
			t.Errorf("latency %+v", l)
		}
		if _, err := h.Sub(BucketHistogram{Bounds: []float64{1}}); err == nil {
			t.Error("subtracted histograms of other buckets")
		}
	})
}

func TestBacklogTotalsFollowTheEvents(t *testing.T) {
	t.Parallel()
	g := newBacklog(3, 2, 5, 3, time.Now)
	seen := map[string]int{}
	for range 5000 {
		ev, err := g.next()
		if err != nil {
			t.Fatal(err)
		}
		seen[string(ev.Type)]++
		if ev.Sequence != g.seq || ev.OrgID.IsZero() || ev.ID.IsZero() || ev.Version != "v1" || !ev.Type.Valid() {
			t.Fatalf("event %+v", ev)
		}
	}
	if len(seen) != 12 {
		t.Errorf("event types %v, want all twelve", seen)
	}
	want := newBacklog(3, 2, 5, 3, time.Now)
	for range 5000 {
		if _, err := want.next(); err != nil {
			t.Fatal(err)
		}
	}
	if g.expected() != want.expected() || g.mix != want.mix {
		t.Errorf("one seed, two backlogs: %v %v", g.expected(), want.expected())
	}
}
