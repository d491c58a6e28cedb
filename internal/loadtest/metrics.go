package loadtest

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is one reading of a Prometheus endpoint or registry: every
// sample by its series as the text format writes it, name{label="value"}
// (labels in the order written; none: the bare name).
type Metrics map[string]float64

// ParseMetrics reads the Prometheus text exposition format. Comments and
// timestamps are ignored; a line it cannot read is an error.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The series ends at the closing brace of its labels (label
		// values may hold spaces), or at the first space.
		end := strings.IndexByte(line, ' ')
		if i := strings.IndexByte(line, '{'); i >= 0 && (end < 0 || i < end) {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("metrics: malformed line %q", line)
			}
			end = j + 1
		}
		if end <= 0 || end >= len(line) {
			return nil, fmt.Errorf("metrics: malformed line %q", line)
		}
		fields := strings.Fields(line[end:])
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: malformed value in %q", line)
		}
		m[line[:end]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

// GatherMetrics reads a registry the way ParseMetrics reads its
// exposition: counters and gauges under name{labels}, histograms as
// name_bucket{le="…"}, name_sum and name_count.
func GatherMetrics(g prometheus.Gatherer) (Metrics, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather metrics: %w", err)
	}
	m := Metrics{}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			series := func(suffix string, extra ...string) string {
				all := append(slices.Clone(labels), extra...)
				if len(all) == 0 {
					return name + suffix
				}
				return name + suffix + "{" + strings.Join(all, ",") + "}"
			}
			switch {
			case s.GetHistogram() != nil:
				h := s.GetHistogram()
				for _, b := range h.GetBucket() {
					m[series("_bucket", `le="`+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)+`"`)] = float64(b.GetCumulativeCount())
				}
				m[series("_bucket", `le="+Inf"`)] = float64(h.GetSampleCount())
				m[series("_sum")] = h.GetSampleSum()
				m[series("_count")] = float64(h.GetSampleCount())
			case s.GetCounter() != nil:
				m[series("")] = s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				m[series("")] = s.GetGauge().GetValue()
			case s.GetUntyped() != nil:
				m[series("")] = s.GetUntyped().GetValue()
			}
		}
	}
	return m, nil
}

// Metrics reads the API's GET /metrics.
func (c *Client) Metrics(ctx context.Context) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return ParseMetrics(resp.Body)
}

// BucketHistogram is a Prometheus histogram as scraped: cumulative counts
// per upper bound (seconds), ascending, the last one +Inf.
type BucketHistogram struct {
	Bounds     []float64
	Cumulative []float64
	Sum, Count float64
}

// Buckets returns the histogram name (without its _bucket suffix) of m;
// ok is false when m has no such series.
func (m Metrics) Buckets(name string) (h BucketHistogram, ok bool) {
	prefix := name + "_bucket{"
	type bucket struct{ le, n float64 }
	var bs []bucket
	for series, v := range m {
		if !strings.HasPrefix(series, prefix) {
			continue
		}
		_, after, found := strings.Cut(series, `le="`)
		if !found {
			continue
		}
		le, _, _ := strings.Cut(after, `"`)
		bound, err := strconv.ParseFloat(le, 64) // accepts "+Inf"
		if err != nil {
			continue
		}
		bs = append(bs, bucket{bound, v})
	}
	if len(bs) == 0 {
		return BucketHistogram{}, false
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	for _, b := range bs {
		h.Bounds = append(h.Bounds, b.le)
		h.Cumulative = append(h.Cumulative, b.n)
	}
	h.Sum, h.Count = m[name+"_sum"], m[name+"_count"]
	return h, true
}

// Sub returns what h recorded since the earlier reading o of the same
// histogram (same buckets).
func (h BucketHistogram) Sub(o BucketHistogram) (BucketHistogram, error) {
	if !slices.Equal(h.Bounds, o.Bounds) {
		return BucketHistogram{}, fmt.Errorf("histogram buckets changed between readings: %v, %v", o.Bounds, h.Bounds)
	}
	d := BucketHistogram{Bounds: h.Bounds, Cumulative: make([]float64, len(h.Bounds)), Sum: h.Sum - o.Sum, Count: h.Count - o.Count}
	for i := range h.Cumulative {
		d.Cumulative[i] = h.Cumulative[i] - o.Cumulative[i]
	}
	return d, nil
}

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

// Latency summarises h: quantiles as bucket upper bounds, the exact
// mean; Min and Max are unknown and left 0. A quantile beyond the last
// finite bucket shows as the largest duration.
func (h BucketHistogram) Latency() Latency {
	d := func(sec float64) time.Duration {
		if math.IsInf(sec, 1) || sec*1e9 >= math.MaxInt64 {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(sec * 1e9)
	}
	l := Latency{Count: uint64(h.Count), P50: d(h.Quantile(0.50)), P90: d(h.Quantile(0.90)), P99: d(h.Quantile(0.99)), P999: d(h.Quantile(0.999))}
	if h.Count > 0 {
		l.Mean = d(h.Sum / h.Count)
	}
	return l
}
