package telemetry

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Thresholds are the scaling guide's alert thresholds. The zero value of
// each field means the guide's value; a negative one turns its rule off.
type Thresholds struct {
	// BusBacklog: events waiting for the reports projector (the durable
	// consumer's undelivered and unacknowledged messages) plus the events
	// the relay has not yet published. Default 1,000.
	BusBacklog float64
	// BusErrorRate: the share of the consumer's settled messages that were
	// retried or dead-lettered. Default 0.05 (5 %).
	BusErrorRate float64
	// BusProcessingTime: the 95th percentile time to apply one projector
	// batch, in seconds. Default 2.
	BusProcessingTime float64
	// DBPoolUsage: acquired over maximum connections of a pool. Default
	// 0.8 (80 %).
	DBPoolUsage float64
	// DBQueryTime: the 95th percentile of a statement label's query time
	// (hmp_db_query_seconds), in seconds. Default 1.
	DBQueryTime float64
	// DBLockContention: the share of the database's active sessions that
	// wait on a lock. Default 0.1 (10 %).
	DBLockContention float64
	// CacheHitRate: a cache tier's hits over its lookups, alerting BELOW
	// it. Default 0.7 (70 %).
	CacheHitRate float64
	// CorrectionBatchSize: the mean corrections per correction write; more
	// means a lot of drift at once. Default 100.
	CorrectionBatchSize float64
	// CorrectionTime: the 95th percentile time of one correction write, in
	// seconds. Default 5.
	CorrectionTime float64
	// CorrectionErrorRate: failed correction writes per written batch.
	// Default 0.05 (5 %).
	CorrectionErrorRate float64
}

// GuideThresholds are the scaling guide's values.
var GuideThresholds = Thresholds{
	BusBacklog: 1000, BusErrorRate: 0.05, BusProcessingTime: 2,
	DBPoolUsage: 0.8, DBQueryTime: 1, DBLockContention: 0.1,
	CacheHitRate:        0.7,
	CorrectionBatchSize: 100, CorrectionTime: 5, CorrectionErrorRate: 0.05,
}

// Config tunes the alert evaluator. The zero value of each field means
// its default.
type Config struct {
	// Thresholds of the rules. Zero fields: the guide's.
	Thresholds Thresholds
	// Interval between evaluations. Default 15 s; negative: no evaluator.
	Interval time.Duration
	// Window of the rates and percentiles. Default 5 min.
	Window time.Duration
	// For is how long a rule's condition must hold before its alert fires
	// (pending until then). Default 1 min; negative: fire at once.
	For time.Duration
	// History bounds the resolved alerts kept for the API. Default 200.
	History int
	// Now is the clock of the evaluations. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every zero field at its default.
func (c Config) WithDefaults() Config {
	t, g := &c.Thresholds, GuideThresholds
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&t.BusBacklog, g.BusBacklog)
	def(&t.BusErrorRate, g.BusErrorRate)
	def(&t.BusProcessingTime, g.BusProcessingTime)
	def(&t.DBPoolUsage, g.DBPoolUsage)
	def(&t.DBQueryTime, g.DBQueryTime)
	def(&t.DBLockContention, g.DBLockContention)
	def(&t.CacheHitRate, g.CacheHitRate)
	def(&t.CorrectionBatchSize, g.CorrectionBatchSize)
	def(&t.CorrectionTime, g.CorrectionTime)
	def(&t.CorrectionErrorRate, g.CorrectionErrorRate)
	if c.Interval == 0 {
		c.Interval = 15 * time.Second
	}
	if c.Window == 0 {
		c.Window = 5 * time.Minute
	}
	if c.For == 0 {
		c.For = time.Minute // negative stays: fire at once (WithDefaults may run twice)
	}
	if c.History == 0 {
		c.History = 200
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem of c (defaults filled) at once.
func (c Config) Validate() error {
	var errs []error
	if c.Interval > 0 && c.Window < 2*c.Interval {
		errs = append(errs, fmt.Errorf("alert window %s must span at least two evaluation intervals (%s)", c.Window, c.Interval))
	}
	if c.History < 1 {
		errs = append(errs, fmt.Errorf("alert history must be positive, got %d", c.History))
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"bus error rate", c.Thresholds.BusErrorRate}, {"pool usage", c.Thresholds.DBPoolUsage},
		{"lock contention", c.Thresholds.DBLockContention}, {"cache hit rate", c.Thresholds.CacheHitRate},
		{"correction error rate", c.Thresholds.CorrectionErrorRate}} {
		if r.v > 1 {
			errs = append(errs, fmt.Errorf("alert threshold %s is a share within (0, 1], got %v", r.name, r.v))
		}
	}
	return errors.Join(errs...)
}

// Severity of an alert, as its "severity" label.
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// A Rule raises an alert per series of Expr whose value crosses Threshold
// (above it, or below it when Below) for at least For.
type Rule struct {
	// Name is the alert's name (Prometheus alertname).
	Name     string
	Severity string
	// Family groups rules as the guide does: bus, database, cache,
	// corrections.
	Family    string
	Summary   string
	Expr      Expr
	Below     bool
	Threshold float64
	For       time.Duration
}

// PromQL renders the rule's condition.
func (r Rule) PromQL() string {
	op := ">"
	if r.Below {
		op = "<"
	}
	return r.Expr.PromQL() + " " + op + " " + formatFloat(r.Threshold)
}

// crossed reports whether v breaks the rule (NaN never does, as in
// PromQL).
func (r Rule) crossed(v float64) bool {
	if r.Below {
		return v < r.Threshold
	}
	return v > r.Threshold
}

func sel(name string, m ...Matcher) Series { return Series{Name: name, Matchers: m} }

// p95 is the 95th percentile of histogram name over w, grouped by the
// labels by.
func p95(name string, w time.Duration, by ...string) Expr {
	return Quantile{Q: 0.95, Of: Agg{Op: "sum", By: append([]string{"le"}, by...), Of: Rate{Of: sel(name + "_bucket"), Window: w}}}
}

func sumRate(s Series, w time.Duration, by ...string) Expr {
	return Agg{Op: "sum", By: by, Of: Rate{Of: s, Window: w}}
}

// Rules returns the guide's rules at cfg's thresholds (defaults filled),
// leaving out those whose threshold is negative.
//
// The packages that own the metrics the rules read export every label
// combination a rule divides or sums by at zero from their start (cache
// hits and misses by tier and class, consumer messages by result): in
// Prometheus a series that appears at its first increment loses that
// increment to rate, and a missing numerator (no hit yet) makes a ratio
// evaluate to nothing. Statement labels of hmp_db_query_seconds are the
// exception: an open set, each exported from its first statement.
func Rules(cfg Config) []Rule {
	cfg = cfg.WithDefaults()
	t, w, f := cfg.Thresholds, cfg.Window, cfg.For
	rules := []Rule{
		{Name: "HMPBusBacklogHigh", Family: "bus", Severity: SeverityWarning, Threshold: t.BusBacklog,
			Summary: "events waiting for the reports projector (consumer pending plus unpublished outbox)",
			Expr:    Binary{Op: "+", A: Agg{Op: "max", Of: sel("hmp_consumer_pending")}, B: Agg{Op: "max", Of: sel("hmp_outbox_unpublished")}}},
		{Name: "HMPBusErrorRateHigh", Family: "bus", Severity: SeverityCritical, Threshold: t.BusErrorRate,
			Summary: "share of consumed messages retried or dead-lettered",
			Expr: Binary{Op: "/", A: sumRate(sel("hmp_consumer_messages_total", Matcher{Label: "result", Value: "retried|dead_lettered", Regex: true}), w),
				B: sumRate(sel("hmp_consumer_messages_total"), w)}},
		{Name: "HMPBusProcessingSlow", Family: "bus", Severity: SeverityWarning, Threshold: t.BusProcessingTime,
			Summary: "95th percentile seconds to apply one projector batch",
			Expr:    p95("hmp_projector_batch_seconds", w)},
		{Name: "HMPDBPoolSaturated", Family: "database", Severity: SeverityWarning, Threshold: t.DBPoolUsage,
			Summary: "share of a connection pool's maximum connections in use",
			Expr:    Binary{Op: "/", A: sel("hmp_db_pool_acquired_conns"), B: sel("hmp_db_pool_max_conns")}},
		{Name: "HMPDBQuerySlow", Family: "database", Severity: SeverityWarning, Threshold: t.DBQueryTime,
			Summary: "95th percentile seconds of a statement label's queries",
			Expr:    p95("hmp_db_query_seconds", w, "label")},
		{Name: "HMPDBLockContention", Family: "database", Severity: SeverityWarning, Threshold: t.DBLockContention,
			Summary: "share of the database's active sessions waiting on a lock",
			Expr: Binary{Op: "/", A: Agg{Op: "max", Of: sel("hmp_db_lock_waiting_sessions")},
				B: ClampMin{Of: Agg{Op: "max", Of: sel("hmp_db_active_sessions")}, Min: 1}}},
		{Name: "HMPCacheHitRateLow", Family: "cache", Severity: SeverityWarning, Threshold: t.CacheHitRate, Below: true,
			Summary: "share of a cache tier's lookups it answered",
			Expr: Binary{Op: "/", A: sumRate(sel("hmp_cache_hits_total"), w, "tier"),
				B: Binary{Op: "+", A: sumRate(sel("hmp_cache_hits_total"), w, "tier"), B: sumRate(sel("hmp_cache_misses_total"), w, "tier")}}},
		{Name: "HMPCorrectionBatchLarge", Family: "corrections", Severity: SeverityWarning, Threshold: t.CorrectionBatchSize,
			Summary: "mean corrections per correction write (much drift at once)",
			Expr:    Binary{Op: "/", A: sumRate(sel("hmp_corrections_batch_size_sum"), w), B: sumRate(sel("hmp_corrections_batch_size_count"), w)}},
		{Name: "HMPCorrectionSlow", Family: "corrections", Severity: SeverityWarning, Threshold: t.CorrectionTime,
			Summary: "95th percentile seconds of one correction write",
			Expr:    p95("hmp_corrections_batch_seconds", w)},
		{Name: "HMPCorrectionErrorRateHigh", Family: "corrections", Severity: SeverityCritical, Threshold: t.CorrectionErrorRate,
			Summary: "failed correction writes per written batch",
			Expr:    Binary{Op: "/", A: sumRate(sel("hmp_corrections_errors_total"), w), B: sumRate(sel("hmp_corrections_batch_seconds_count"), w)}},
	}
	out := rules[:0]
	for _, r := range rules {
		if r.Threshold >= 0 {
			r.For = max(f, 0)
			out = append(out, r)
		}
	}
	return out
}

// PrometheusRules renders rules as a Prometheus rules file (one group),
// the same expressions, thresholds and for durations the evaluator uses.
// Strings are JSON-quoted, which YAML reads as double-quoted scalars.
func PrometheusRules(rules []Rule, interval time.Duration) string {
	return promRules(rules, interval, true)
}

// promRules renders the rules file, with or without annotations (a
// promtool unit test compares annotations verbatim).
func promRules(rules []Rule, interval time.Duration, annotate bool) string {
	var b strings.Builder
	b.WriteString("# HMP alert rules: the scaling guide's thresholds, as hmp evaluates them itself.\n")
	b.WriteString("# Generated by `hmp alerts rules`; check with `promtool check rules`.\n")
	b.WriteString("groups:\n  - name: hmp\n")
	if interval > 0 {
		fmt.Fprintf(&b, "    interval: %s\n", PromDuration(interval))
	}
	b.WriteString("    rules:\n")
	for _, r := range rules {
		fmt.Fprintf(&b, "      - alert: %s\n", r.Name)
		fmt.Fprintf(&b, "        expr: %s\n", strconv.Quote(r.PromQL()))
		if r.For > 0 {
			fmt.Fprintf(&b, "        for: %s\n", PromDuration(r.For))
		}
		b.WriteString("        labels:\n")
		fmt.Fprintf(&b, "          severity: %s\n", r.Severity)
		fmt.Fprintf(&b, "          family: %s\n", r.Family)
		if !annotate {
			continue
		}
		b.WriteString("        annotations:\n")
		fmt.Fprintf(&b, "          summary: %s\n", strconv.Quote(r.Summary))
		op := "above"
		if r.Below {
			op = "below"
		}
		fmt.Fprintf(&b, "          description: %s\n", strconv.Quote(fmt.Sprintf("{{ $value }} is %s the threshold %s", op, formatFloat(r.Threshold))))
	}
	return b.String()
}
