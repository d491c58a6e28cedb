package loadtest

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform µs to ms", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(20 * time.Millisecond))) }},
		{"log-normal around 2 ms", func(r *rand.Rand) time.Duration {
			return time.Duration(float64(2*time.Millisecond) * math.Exp(r.NormFloat64()))
		}},
		{"tiny values", func(r *rand.Rand) time.Duration { return time.Duration(r.IntN(300)) }},
		{"seconds", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(90 * time.Second))) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(1, 2))
			var h Histogram
			exact := make([]time.Duration, 50_000)
			for i := range exact {
				exact[i] = tc.gen(r)
				h.Record(exact[i])
			}
			slices.Sort(exact)
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := max(int(math.Ceil(q*float64(len(exact)))), 1)
				want := exact[rank-1]
				got := h.Quantile(q)
				if got < want || float64(got-want) > float64(want)/128+1 {
					t.Errorf("q%.3f: got %v, want %v (within 1/128 above)", q, got, want)
				}
			}
			if h.Max() != exact[len(exact)-1] || h.Min() != exact[0] || h.Count() != uint64(len(exact)) {
				t.Errorf("max %v min %v count %d", h.Max(), h.Min(), h.Count())
			}
		})
	}
}

func TestHistogramMergeAndEdges(t *testing.T) {
	t.Parallel()
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 || empty.Summary().Count != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		all.Record(d)
	}
	a.Merge(&b)
	a.Merge(&empty)
	if a.Summary() != all.Summary() {
		t.Fatalf("merged %+v, want %+v", a.Summary(), all.Summary())
	}
	var neg Histogram
	neg.Record(-time.Second)
	neg.Record(time.Duration(math.MaxInt64))
	if neg.Min() != 0 || neg.Max() != time.Duration(math.MaxInt64) || neg.Quantile(1) != neg.Max() {
		t.Fatalf("extremes: min %v max %v q1 %v", neg.Min(), neg.Max(), neg.Quantile(1))
	}
}

func TestBuckets(t *testing.T) {
	t.Parallel()
	// Buckets tile the values of time.Duration without gap or overlap.
	var bottom uint64
	for i := range nBuckets {
		top := bucketTop(i)
		if top < bottom {
			t.Fatalf("bucket %d: top %d below bottom %d", i, top, bottom)
		}
		if bucketOf(top) != i || bucketOf(bottom) != i {
			t.Fatalf("bucket %d: bucketOf(%d) = %d, bucketOf(%d) = %d", i, bottom, bucketOf(bottom), top, bucketOf(top))
		}
		if top == math.MaxInt64 {
			return
		}
		bottom = top + 1
	}
	t.Fatal("the buckets do not reach math.MaxInt64")
}

func TestLatencyJSON(t *testing.T) {
	t.Parallel()
	in := Latency{Count: 3, Mean: 1500 * time.Microsecond, Min: time.Microsecond, P50: 2 * time.Millisecond,
		P90: 3 * time.Millisecond, P99: 4 * time.Millisecond, P999: 5 * time.Millisecond, Max: time.Second}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["p99Ms"] != 4.0 || m["maxMs"] != 1000.0 || m["minMs"] != 0.001 {
		t.Fatalf("json %s", b)
	}
	var out Latency
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip %+v, want %+v", out, in)
	}
}
