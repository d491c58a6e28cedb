// Package measure reads Prometheus metrics for the tools and tests that
// check what a running HMP counted: one scrape of a text exposition or
// one gathering of a registry becomes a Metrics map, histograms in it
// become a BucketHistogram, and quantiles are estimated the way
// Prometheus' histogram_quantile does.
package measure

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one reading of a Prometheus endpoint or registry: every
// sample by its series as the text format writes it, name{label="value"}
// (labels in the order written; none: the bare name). Histograms appear
// as name_bucket{…,le="…"} (the +Inf bucket included), name_sum and
// name_count; summaries as name{…,quantile="…"}, name_sum and name_count.
type Metrics map[string]float64

// Parse reads the Prometheus text exposition format (expfmt's parser).
// Comments and timestamps are ignored; malformed input is an error.
func Parse(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return flatten(mfs), nil
}

// Gather reads a registry the way Parse reads its exposition.
func Gather(g prometheus.Gatherer) (Metrics, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather metrics: %w", err)
	}
	byName := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	return flatten(byName), nil
}

func flatten(mfs map[string]*dto.MetricFamily) Metrics {
	m := Metrics{}
	for name, mf := range mfs {
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
				n := float64(h.GetSampleCount())
				if h.SampleCountFloat != nil { // a parsed exposition with float counts
					n = h.GetSampleCountFloat()
				}
				for _, b := range h.GetBucket() {
					c := float64(b.GetCumulativeCount())
					if b.CumulativeCountFloat != nil {
						c = b.GetCumulativeCountFloat()
					}
					m[series("_bucket", `le="`+formatBound(b.GetUpperBound())+`"`)] = c
				}
				m[series("_bucket", `le="+Inf"`)] = n
				m[series("_sum")] = h.GetSampleSum()
				m[series("_count")] = n
			case s.GetSummary() != nil:
				sm := s.GetSummary()
				for _, q := range sm.GetQuantile() {
					m[series("", `quantile="`+formatBound(q.GetQuantile())+`"`)] = q.GetValue()
				}
				m[series("_sum")] = sm.GetSampleSum()
				m[series("_count")] = float64(sm.GetSampleCount())
			case s.GetCounter() != nil:
				m[series("")] = s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				m[series("")] = s.GetGauge().GetValue()
			case s.GetUntyped() != nil:
				m[series("")] = s.GetUntyped().GetValue()
			}
		}
	}
	return m
}

func formatBound(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Sum adds the samples of the series called name (exactly, labels aside)
// whose labels contain every one of match (`k="v"` fragments); ok is
// false when no series matched.
func (m Metrics) Sum(name string, match ...string) (total float64, ok bool) {
	for series, v := range m {
		base, labels, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		all := true
		for _, f := range match {
			all = all && strings.Contains(labels, f)
		}
		if all {
			total, ok = total+v, true
		}
	}
	return total, ok
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
