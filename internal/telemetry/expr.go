// Package telemetry watches a running HMP: metric collectors the other
// packages do not own (the connection pool, the database's lock counters,
// the bus backlog), an alert evaluator over the process's own Prometheus
// registry, the same rules exported for Prometheus, and the notifiers
// (Slack-compatible webhook, email) that announce alerts.
package telemetry

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"hmp/internal/measure"
)

// An Expr is a small subset of PromQL that renders itself as PromQL (for
// Prometheus) and evaluates itself over the process's own samples (for the
// built-in evaluator), so that both see one expression.
type Expr interface {
	// PromQL renders the expression.
	PromQL() string
	eval(*evalContext) vector
}

// sample is one series' value.
type sample struct {
	labels map[string]string
	value  float64
}

type vector []sample

// snapshot is every series of one gather, by flattened name (histograms
// as name_bucket{le}, name_sum and name_count, as Prometheus scrapes
// them).
type snapshot struct {
	at     time.Time
	series map[string]vector
}

func newSnapshot(at time.Time, families []*dto.MetricFamily) *snapshot {
	s := &snapshot{at: at, series: map[string]vector{}}
	for _, f := range families {
		name := f.GetName()
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.add(name, labels, m.Counter.GetValue())
			case m.Gauge != nil:
				s.add(name, labels, m.Gauge.GetValue())
			case m.Untyped != nil:
				s.add(name, labels, m.Untyped.GetValue())
			case m.Histogram != nil:
				h := m.Histogram
				for _, b := range h.GetBucket() {
					s.add(name+"_bucket", with(labels, "le", formatFloat(b.GetUpperBound())), float64(b.GetCumulativeCount()))
				}
				s.add(name+"_bucket", with(labels, "le", "+Inf"), float64(h.GetSampleCount()))
				s.add(name+"_sum", labels, h.GetSampleSum())
				s.add(name+"_count", labels, float64(h.GetSampleCount()))
			case m.Summary != nil:
				s.add(name+"_sum", labels, m.Summary.GetSampleSum())
				s.add(name+"_count", labels, float64(m.Summary.GetSampleCount()))
			}
		}
	}
	return s
}

func (s *snapshot) add(name string, labels map[string]string, v float64) {
	s.series[name] = append(s.series[name], sample{labels: labels, value: v})
}

func with(labels map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for lk, lv := range labels {
		out[lk] = lv
	}
	out[k] = v
	return out
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// labelKey is a canonical form of a label set, for matching.
func labelKey(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

// evalContext holds the current gather and the one a range (rate) starts
// from.
type evalContext struct {
	now *snapshot
	// past returns the oldest kept snapshot not older than window before
	// now (nil: none but the current one).
	past func(window time.Duration) *snapshot
}

// Matcher selects series by a label: equal to Value, or matching it as a
// regular expression (anchored, as in PromQL) when Regex.
type Matcher struct {
	Label, Value string
	Regex        bool
}

func (m Matcher) String() string {
	op := "="
	if m.Regex {
		op = "=~"
	}
	return m.Label + op + strconv.Quote(m.Value)
}

func (m Matcher) matches(labels map[string]string) bool {
	if m.Regex {
		ok, _ := regexp.MatchString("^(?:"+m.Value+")$", labels[m.Label])
		return ok
	}
	return labels[m.Label] == m.Value
}

// Series selects a metric's series: name{matchers}.
type Series struct {
	Name     string
	Matchers []Matcher
}

func (s Series) PromQL() string {
	if len(s.Matchers) == 0 {
		return s.Name
	}
	parts := make([]string, len(s.Matchers))
	for i, m := range s.Matchers {
		parts[i] = m.String()
	}
	return s.Name + "{" + strings.Join(parts, ",") + "}"
}

func (s Series) eval(c *evalContext) vector { return s.from(c.now) }

func (s Series) from(snap *snapshot) vector {
	var out vector
	for _, smp := range snap.series[s.Name] {
		ok := true
		for _, m := range s.Matchers {
			ok = ok && m.matches(smp.labels)
		}
		if ok {
			out = append(out, smp)
		}
	}
	return out
}

// Rate is rate(series[window]): the per-second increase of a counter over
// the window, counter resets taken as restarts from zero. Unlike
// Prometheus it does not extrapolate to the window's edges (the ratios the
// rules compare are the same either way), and a series absent from the
// window's first gather counts from zero: in one process a labelled
// counter appears at its first increment, which Prometheus would miss.
type Rate struct {
	Of     Series
	Window time.Duration
}

func (r Rate) PromQL() string {
	return "rate(" + r.Of.PromQL() + "[" + PromDuration(r.Window) + "])"
}

func (r Rate) eval(c *evalContext) vector {
	past := c.past(r.Window)
	if past == nil {
		return nil
	}
	secs := c.now.at.Sub(past.at).Seconds()
	if secs <= 0 {
		return nil
	}
	then := map[string]float64{}
	for _, smp := range r.Of.from(past) {
		then[labelKey(smp.labels)] = smp.value
	}
	var out vector
	for _, smp := range r.Of.from(c.now) {
		d := smp.value - then[labelKey(smp.labels)]
		if d < 0 {
			d = smp.value // reset
		}
		out = append(out, sample{labels: smp.labels, value: d / secs})
	}
	return out
}

// Agg is sum or max by (labels) of a vector; an empty input gives an empty
// output, as in PromQL.
type Agg struct {
	Op string // "sum" or "max"
	By []string
	Of Expr
}

func (a Agg) PromQL() string {
	by := ""
	if len(a.By) > 0 {
		by = " by (" + strings.Join(a.By, ", ") + ")"
	}
	return a.Op + by + " (" + a.Of.PromQL() + ")"
}

func (a Agg) eval(c *evalContext) vector {
	groups := map[string]*sample{}
	var order []string
	for _, smp := range a.Of.eval(c) {
		labels := map[string]string{}
		for _, l := range a.By {
			if v, ok := smp.labels[l]; ok {
				labels[l] = v
			}
		}
		k := labelKey(labels)
		g, ok := groups[k]
		if !ok {
			groups[k] = &sample{labels: labels, value: smp.value}
			order = append(order, k)
			continue
		}
		switch a.Op {
		case "sum":
			g.value += smp.value
		case "max":
			if smp.value > g.value || math.IsNaN(g.value) {
				g.value = smp.value
			}
		}
	}
	out := make(vector, 0, len(order))
	for _, k := range order {
		out = append(out, *groups[k])
	}
	return out
}

// Binary is a op b between two vectors, one to one on identical label
// sets (op: + or /). Division by zero gives ±Inf or NaN, as in PromQL.
type Binary struct {
	Op   string
	A, B Expr
}

func (b Binary) PromQL() string { return "(" + b.A.PromQL() + " " + b.Op + " " + b.B.PromQL() + ")" }

func (b Binary) eval(c *evalContext) vector {
	right := map[string]float64{}
	for _, smp := range b.B.eval(c) {
		right[labelKey(smp.labels)] = smp.value
	}
	var out vector
	for _, smp := range b.A.eval(c) {
		r, ok := right[labelKey(smp.labels)]
		if !ok {
			continue
		}
		v := smp.value
		switch b.Op {
		case "+":
			v += r
		case "/":
			v /= r
		}
		out = append(out, sample{labels: smp.labels, value: v})
	}
	return out
}

// ClampMin is clamp_min(e, min).
type ClampMin struct {
	Of  Expr
	Min float64
}

func (c ClampMin) PromQL() string {
	return "clamp_min(" + c.Of.PromQL() + ", " + formatFloat(c.Min) + ")"
}

func (c ClampMin) eval(ctx *evalContext) vector {
	var out vector
	for _, smp := range c.Of.eval(ctx) {
		out = append(out, sample{labels: smp.labels, value: math.Max(smp.value, c.Min)})
	}
	return out
}

// Quantile is histogram_quantile(q, buckets): buckets must carry the le
// label (a rate of name_bucket, summed by le and the labels to keep).
type Quantile struct {
	Q  float64
	Of Expr
}

func (q Quantile) PromQL() string {
	return "histogram_quantile(" + formatFloat(q.Q) + ", " + q.Of.PromQL() + ")"
}

type bucket struct {
	upper, count float64
}

func (q Quantile) eval(c *evalContext) vector {
	type group struct {
		labels  map[string]string
		buckets []bucket
	}
	groups := map[string]*group{}
	var order []string
	for _, smp := range q.Of.eval(c) {
		le, ok := smp.labels["le"]
		if !ok {
			continue
		}
		upper, err := strconv.ParseFloat(le, 64)
		if err != nil {
			continue
		}
		labels := map[string]string{}
		for k, v := range smp.labels {
			if k != "le" {
				labels[k] = v
			}
		}
		k := labelKey(labels)
		g, ok := groups[k]
		if !ok {
			g = &group{labels: labels}
			groups[k] = g
			order = append(order, k)
		}
		g.buckets = append(g.buckets, bucket{upper: upper, count: smp.value})
	}
	var out vector
	for _, k := range order {
		g := groups[k]
		out = append(out, sample{labels: g.labels, value: bucketQuantile(q.Q, g.buckets)})
	}
	return out
}

// bucketQuantile is Prometheus's interpolation within cumulative buckets
// (measure's, shared with the dashboard and the load tests).
func bucketQuantile(q float64, buckets []bucket) float64 {
	slices.SortFunc(buckets, func(a, b bucket) int { return cmp.Compare(a.upper, b.upper) })
	h := measure.BucketHistogram{Bounds: make([]float64, len(buckets)), Cumulative: make([]float64, len(buckets))}
	for i, b := range buckets {
		h.Bounds[i], h.Cumulative[i] = b.upper, b.count
	}
	return h.Quantile(q)
}

// PromDuration renders d as a Prometheus duration (1h30m, 15s, 250ms).
func PromDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	if b.Len() == 0 {
		return "1ms"
	}
	return b.String()
}
