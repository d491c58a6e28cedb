package measure

import (
	"math"
	"sort"
)

// Quantile estimates the q-quantile (0..1) of the observations in h as
// Prometheus' histogram_quantile does: linear interpolation within the
// bucket holding rank q·count, the lowest bucket starting at 0 (unless its
// bound is 0 or below, which is then the answer), and a rank in the +Inf
// bucket answered by the highest finite bound. Counts that fall from one
// bucket to the next (rates of cumulative counts can wobble) are read as
// flat. NaN when h has no observations, fewer than two buckets or no +Inf
// bucket; q outside 0..1 gives ∓Inf. h.Bounds must ascend, as Buckets and
// Sub leave them.
func (h BucketHistogram) Quantile(q float64) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	n := len(h.Bounds)
	if n < 2 || len(h.Cumulative) != n || !math.IsInf(h.Bounds[n-1], 1) {
		return math.NaN()
	}
	counts := make([]float64, n)
	for i, c := range h.Cumulative {
		counts[i] = c
		if i > 0 {
			counts[i] = math.Max(c, counts[i-1])
		}
	}
	total := counts[n-1]
	if total == 0 || math.IsNaN(total) {
		return math.NaN()
	}
	rank := q * total
	b := sort.Search(n-1, func(i int) bool { return counts[i] >= rank })
	if b == n-1 {
		return h.Bounds[n-2]
	}
	if b == 0 && h.Bounds[0] <= 0 {
		return h.Bounds[0]
	}
	start, end, count := 0.0, h.Bounds[b], counts[b]
	if b > 0 {
		start = h.Bounds[b-1]
		count -= counts[b-1]
		rank -= counts[b-1]
	}
	if count == 0 {
		return end
	}
	return start + (end-start)*(rank/count)
}

// Bound returns the upper bound (seconds) of the bucket holding the q-th
// observation: the true quantile is at most that, which is what a check
// that must not pass by estimation needs. +Inf when it lies beyond the
// last finite bucket; 0 when h is empty.
func (h BucketHistogram) Bound(q float64) float64 {
	n := h.Count
	if len(h.Cumulative) > 0 {
		n = h.Cumulative[len(h.Cumulative)-1]
	}
	if n <= 0 {
		return 0
	}
	rank := math.Max(1, math.Ceil(q*n))
	for i, c := range h.Cumulative {
		if c >= rank {
			return h.Bounds[i]
		}
	}
	return math.Inf(1)
}
