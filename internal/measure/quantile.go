package measure

import "math"

// Quantile returns the upper bound (seconds) of the bucket holding the
// q-th observation: the true quantile is at most that. +Inf when it lies
// beyond the last finite bucket; 0 when h is empty.
func (h BucketHistogram) Quantile(q float64) float64 {
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
