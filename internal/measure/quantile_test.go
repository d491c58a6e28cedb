package measure

import (
	"math"
	"testing"
)

func TestBucketHistogramQuantile(t *testing.T) {
	t.Parallel()
	inf, nan := math.Inf(1), math.NaN()
	h := func(bounds, cumulative []float64) BucketHistogram {
		return BucketHistogram{Bounds: bounds, Cumulative: cumulative}
	}
	for _, tc := range []struct {
		name string
		h    BucketHistogram
		q    float64
		want float64
	}{
		{"on a bucket's bound", h([]float64{1, 2, inf}, []float64{5, 10, 10}), 0.5, 1},
		{"interpolated within the bucket", h([]float64{1, 2, inf}, []float64{5, 10, 10}), 0.75, 1.5},
		{"the lowest bucket starts at 0", h([]float64{1, 2, inf}, []float64{4, 8, 8}), 0.25, 0.5},
		{"a lowest bound at or below 0 is the answer", h([]float64{0, 2, inf}, []float64{4, 8, 8}), 0.25, 0},
		{"in +Inf: the highest finite bound", h([]float64{1, 2, inf}, []float64{0, 0, 10}), 0.95, 2},
		{"counts that fall read as flat", h([]float64{1, 2, 4, inf}, []float64{4, 3, 8, 8}), 0.75, 3},
		{"a rank in an empty bucket: its bound", h([]float64{1, 2, inf}, []float64{0, 10, 10}), 0, 1},
		{"q 1: the top of the last finite bucket holding it", h([]float64{1, 2, inf}, []float64{5, 10, 10}), 1, 2},
		{"no observations", h([]float64{1, inf}, []float64{0, 0}), 0.5, nan},
		{"no +Inf bucket", h([]float64{1, 2}, []float64{5, 10}), 0.5, nan},
		{"one bucket", h([]float64{inf}, []float64{10}), 0.5, nan},
		{"empty", BucketHistogram{}, 0.5, nan},
		{"q below 0", h([]float64{1, inf}, []float64{1, 1}), -0.1, math.Inf(-1)},
		{"q above 1", h([]float64{1, inf}, []float64{1, 1}), 1.1, inf},
		{"q NaN", h([]float64{1, inf}, []float64{1, 1}), nan, nan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.h.Quantile(tc.q)
			if got != tc.want && !(math.IsNaN(got) && math.IsNaN(tc.want)) {
				t.Errorf("q%v of %+v = %v, want %v", tc.q, tc.h, got, tc.want)
			}
		})
	}
}

func TestBucketHistogramBound(t *testing.T) {
	t.Parallel()
	// 90 observations: 0 ≤ 10 ms, 80 in (10, 50] ms, 9 in (50, 100] ms, 1 above.
	d := BucketHistogram{Bounds: []float64{0.01, 0.05, 0.1, math.Inf(1)}, Cumulative: []float64{0, 80, 89, 90}, Count: 90}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 0.05}, {0.88, 0.05}, {0.9, 0.1}, {0.98, 0.1}, {0.99, math.Inf(1)}} {
		if got := d.Bound(tc.q); got != tc.want {
			t.Errorf("q%v = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := (BucketHistogram{}).Bound(0.5); got != 0 {
		t.Errorf("empty: %v, want 0", got)
	}
}
