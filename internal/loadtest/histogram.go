package loadtest

import (
	"encoding/json"
	"math"
	"math/bits"
	"time"
)

// Histogram records latencies in HDR style: log-linear buckets whose width
// is at most 1/128 of their value, so every quantile it reports is within
// 0.8 % of the exact one, over the whole range of time.Duration, in a fixed
// 60 KiB. Recording is a few instructions and never allocates.
//
// A Histogram is not safe for concurrent use: give each worker its own and
// Merge them when the run ends. The zero value is empty and ready to use.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      float64 // nanoseconds, for the mean
	min, max time.Duration
}

const (
	// subBits sets the precision: 2^subBits linear sub-buckets per power of
	// two, the upper half of which is used above the first range.
	subBits  = 8
	subCount = 1 << subBits
	subHalf  = subCount / 2
	nBuckets = (64-subBits)*subHalf + subCount
)

// bucketOf maps a non-negative value to its bucket index.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits
	return shift*subHalf + int(v>>shift)
}

// bucketTop is the largest value that maps to bucket i.
func bucketTop(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := (i - subHalf) / subHalf
	sub := uint64(i - shift*subHalf)
	return (sub+1)<<shift - 1
}

// Record adds one latency; a negative one counts as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if h.counts == nil {
		h.counts = make([]uint64, nBuckets)
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += float64(d)
}

// Merge adds every latency recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, nBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of recorded latencies.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest recorded latency, exactly; 0 when empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Min is the smallest recorded latency, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration { return h.min }

// Mean is the exact mean; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the latency below or at which a fraction q (0..1) of
// the recorded ones lie: the top of the bucket holding the q-th value
// (never above Max, never below Min). 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = math.Max(0, math.Min(1, q))
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(bucketTop(i))
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// Summary returns the usual quantiles of h.
func (h *Histogram) Summary() Latency {
	return Latency{
		Count: h.n, Mean: h.Mean(), Min: h.min,
		P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99), P999: h.Quantile(0.999),
		Max: h.max,
	}
}

// Latency summarises a histogram. In JSON every duration is a number of
// milliseconds (microsecond precision) under a name ending in Ms.
type Latency struct {
	Count uint64
	Mean  time.Duration
	Min   time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

type latencyJSON struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"meanMs"`
	MinMs  float64 `json:"minMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	MaxMs  float64 `json:"maxMs"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func fromMs(v float64) time.Duration { return time.Duration(math.Round(v * 1e6)) }

// MarshalJSON writes the durations as milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(latencyJSON{Count: l.Count, MeanMs: ms(l.Mean), MinMs: ms(l.Min), P50Ms: ms(l.P50),
		P90Ms: ms(l.P90), P99Ms: ms(l.P99), P999Ms: ms(l.P999), MaxMs: ms(l.Max)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Latency) UnmarshalJSON(b []byte) error {
	var j latencyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*l = Latency{Count: j.Count, Mean: fromMs(j.MeanMs), Min: fromMs(j.MinMs), P50: fromMs(j.P50Ms),
		P90: fromMs(j.P90Ms), P99: fromMs(j.P99Ms), P999: fromMs(j.P999Ms), Max: fromMs(j.MaxMs)}
	return nil
}

// Rounded returns l as its JSON form keeps it: every duration rounded to
// the microsecond.
func (l Latency) Rounded() Latency {
	r := func(d time.Duration) time.Duration { return fromMs(ms(d)) }
	return Latency{Count: l.Count, Mean: r(l.Mean), Min: r(l.Min), P50: r(l.P50), P90: r(l.P90), P99: r(l.P99), P999: r(l.P999), Max: r(l.Max)}
}
