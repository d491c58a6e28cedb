package measure

import (
	"math"
	"testing"
)

func TestBucketHistogramQuantile(t *testing.T) {
	t.Parallel()
	// 90 observations: 0 ≤ 10 ms, 80 in (10, 50] ms, 9 in (50, 100] ms, 1 above.
	d := BucketHistogram{Bounds: []float64{0.01, 0.05, 0.1, math.Inf(1)}, Cumulative: []float64{0, 80, 89, 90}, Count: 90}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 0.05}, {0.88, 0.05}, {0.9, 0.1}, {0.98, 0.1}, {0.99, math.Inf(1)}} {
		if got := d.Quantile(tc.q); got != tc.want {
			t.Errorf("q%v = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := (BucketHistogram{}).Quantile(0.5); got != 0 {
		t.Errorf("empty: %v, want 0", got)
	}
}
