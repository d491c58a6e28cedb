package loadtest

import (
	"math"
	"testing"
	"time"

	"hmp/internal/measure"
)

func TestBucketLatency(t *testing.T) {
	t.Parallel()
	h := measure.BucketHistogram{Bounds: []float64{0.01, 0.05, 0.1, math.Inf(1)}, Cumulative: []float64{10, 90, 99, 100}, Sum: 2.5, Count: 100}
	earlier := measure.BucketHistogram{Bounds: h.Bounds, Cumulative: []float64{10, 10, 10, 10}, Sum: 0.05, Count: 10}
	d, err := h.Sub(earlier)
	if err != nil {
		t.Fatal(err)
	}
	// 90 observations: 0 ≤ 10 ms, 80 in (10, 50] ms, 9 in (50, 100] ms, 1 above.
	l := bucketLatency(d)
	if l.Count != 90 || l.P50 != 50*time.Millisecond || l.P90 != 100*time.Millisecond || l.P99 != math.MaxInt64 || l.Mean != time.Duration((h.Sum-0.05)/90*1e9) {
		t.Errorf("latency %+v", l)
	}
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
