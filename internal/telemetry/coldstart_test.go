package telemetry

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/cache"
	"hmp/internal/postgres"
	"hmp/internal/reconcile"
	"hmp/internal/reports"
)

// lookPromtool returns promtool's path, failing the test without it: the
// rules must be checked against Prometheus, not skipped.
func lookPromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed (Debian package prometheus; scripts/deps.sh installs it): the rules cannot be checked against Prometheus")
	}
	return p
}

// absent marks a minute at which a series is not exported.
var absent = math.NaN()

// coldStart returns what a process that has just started exports of the
// series the rules read, keyed by their PromQL selector: the metrics of
// the packages that own them, made as those packages make them, before
// any traffic. The sampled figures (pool, database sessions, bus backlog)
// are gauges exported from the first sample at their current value,
// here none in use.
func coldStart(t *testing.T) map[string]series {
	t.Helper()
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	c, err := cache.New(cache.Config{}, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reports.NewProjector(nil, nil, reports.ProjectorConfig{}, logger, time.Now, reg) // and its consumer's metrics
	reconcile.NewCorrectionBatcher(nil, reconcile.Config{}, nil, logger, time.Now, reg)
	reg.MustRegister(postgres.NewTracer(postgres.TracerConfig{}))
	for _, g := range []struct {
		name   string
		labels prometheus.Labels
		v      float64
	}{
		{"hmp_db_pool_acquired_conns", prometheus.Labels{"pool": "primary"}, 0},
		{"hmp_db_pool_max_conns", prometheus.Labels{"pool": "primary"}, 10},
		{"hmp_db_lock_waiting_sessions", nil, 0},
		{"hmp_db_active_sessions", nil, 1},
		{"hmp_outbox_unpublished", nil, 0},
		{"hmp_consumer_pending", prometheus.Labels{"consumer": "reports"}, 0},
	} {
		gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: g.name, Help: "sampled", ConstLabels: g.labels})
		gauge.Set(g.v)
		reg.MustRegister(gauge)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]series{}
	for name, vec := range newSnapshot(time.Now(), mfs).series {
		for _, s := range vec {
			sr := series{name: name, labels: s.labels, values: []float64{s.value}}
			out[sr.promql()] = sr
		}
	}
	return out
}

// traffic is what a scenario exports after the start: by series, its
// values at minutes 1, 2, … (a series not exported at the start is
// absent at minute 0).
type traffic map[string][]float64

// observe adds to tr n[i] observations of v at minute i+1 to the
// histogram name{labels} with the upper bounds les (the buckets of the
// cold start's series when les is nil).
func (tr traffic) observe(cold map[string]series, name string, labels map[string]string, les []string, v float64, n ...float64) {
	if les == nil {
		for _, s := range cold {
			if s.name == name+"_bucket" && matchesExcept(s.labels, labels, "le") {
				les = append(les, s.labels["le"])
			}
		}
	}
	key := func(suffix string, extra ...string) string {
		l := map[string]string{}
		for k, v := range labels {
			l[k] = v
		}
		if len(extra) == 2 {
			l[extra[0]] = extra[1]
		}
		return series{name: name + suffix, labels: l}.promql()
	}
	mul := func(f float64) []float64 {
		out := make([]float64, len(n))
		for i := range n {
			out[i] = n[i] * f
		}
		return out
	}
	for _, le := range les {
		in := 0.0
		if le == "+Inf" || v <= parseFloat(le) {
			in = 1
		}
		tr[key("_bucket", "le", le)] = mul(in)
	}
	tr[key("_count")] = mul(1)
	tr[key("_sum")] = mul(v)
}

func matchesExcept(got, want map[string]string, except string) bool {
	n := 0
	for k, v := range got {
		if k == except {
			continue
		}
		if want[k] != v {
			return false
		}
		n++
	}
	return n == len(want)
}

func parseFloat(s string) float64 {
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil {
		panic(err)
	}
	return f
}

// promValues renders values for a promtool input series ("_": absent).
func promValues(values []float64) string {
	out := make([]string, len(values))
	for i, v := range values {
		if math.IsNaN(v) {
			out[i] = "_"
		} else {
			out[i] = fmt.Sprint(v)
		}
	}
	return strings.Join(out, " ")
}

// TestRulesFireFromColdStart: from what a process exports right after its
// start, each of the ten rules fires once its threshold is crossed, in
// the built-in evaluator and in Prometheus (promtool test rules), and no
// other rule does. A cold cache that misses every read is the case that
// did not fire: its hits had no series until the first hit.
func TestRulesFireFromColdStart(t *testing.T) {
	promtool := lookPromtool(t)
	t.Parallel()
	cold := coldStart(t)
	const minutes, at = 4, 3 // minute 0: the start; traffic at minutes 1 to 3
	tracerBuckets := []string{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
	type scenario struct {
		rule   string
		labels map[string]string // of the alert, beyond severity and family
		in     traffic
	}
	hist := func(name string, labels map[string]string, les []string, v float64, n ...float64) traffic {
		tr := traffic{}
		tr.observe(cold, name, labels, les, v, n...)
		return tr
	}
	scenarios := []scenario{
		{"", nil, traffic{}}, // no traffic: nothing fires
		{"HMPBusBacklogHigh", nil, traffic{`hmp_consumer_pending{consumer="reports"}`: {1500, 1500, 1500}}},
		// A burst of failures right after the start, nothing after it.
		{"HMPBusErrorRateHigh", nil, traffic{
			`hmp_consumer_messages_total{consumer="reports-projector",result="acked"}`:   {90, 90, 90},
			`hmp_consumer_messages_total{consumer="reports-projector",result="retried"}`: {10, 10, 10}}},
		{"HMPBusProcessingSlow", nil, hist("hmp_projector_batch_seconds", nil, nil, 3, 10, 20, 30)},
		{"HMPDBPoolSaturated", map[string]string{"pool": "primary"}, traffic{`hmp_db_pool_acquired_conns{pool="primary"}`: {9, 9, 9}}},
		// A statement label has a series from its first statement on.
		{"HMPDBQuerySlow", map[string]string{"label": "reports.daily"},
			hist("hmp_db_query_seconds", map[string]string{"label": "reports.daily"}, tracerBuckets, 1.5, 10, 20, 30)},
		{"HMPDBLockContention", nil, traffic{`hmp_db_lock_waiting_sessions`: {3, 3, 3}, `hmp_db_active_sessions`: {20, 20, 20}}},
		// A cold cache: every read misses.
		{"HMPCacheHitRateLow", map[string]string{"tier": "memory"}, traffic{
			`hmp_cache_misses_total{class="active",tier="memory"}`: {100, 200, 300}}},
		{"HMPCorrectionBatchLarge", nil, hist("hmp_corrections_batch_size", nil, nil, 150, 1, 2, 3)},
		{"HMPCorrectionSlow", nil, hist("hmp_corrections_batch_seconds", nil, nil, 8, 1, 2, 3)},
		{"HMPCorrectionErrorRateHigh", nil, func() traffic {
			tr := hist("hmp_corrections_batch_seconds", nil, nil, 0.1, 2, 4, 6)
			tr[`hmp_corrections_errors_total`] = []float64{1, 2, 3}
			return tr
		}()},
	}
	cfg := Config{Window: 5 * time.Minute, For: time.Minute, Interval: time.Minute}
	rules := Rules(cfg)
	if len(rules) != 10 || len(scenarios) != 11 {
		t.Fatalf("%d rules, %d scenarios: one scenario per rule and one without traffic", len(rules), len(scenarios))
	}
	for _, sc := range scenarios {
		for key, v := range sc.in {
			if norm := parseSelector(t, key).promql(); norm != key {
				delete(sc.in, key)
				sc.in[norm] = v
			}
		}
	}
	inputs := func(sc scenario) []series {
		var in []series
		for key, s := range cold {
			if _, ok := sc.in[key]; !ok {
				in = append(in, series{s.name, s.labels, slices.Repeat(s.values, minutes)})
			}
		}
		for key, values := range sc.in {
			s, ok := cold[key]
			if !ok {
				s = parseSelector(t, key)
				s.values = []float64{absent}
			}
			if len(values) != minutes-1 {
				t.Fatalf("%s: %d values, want one per minute after the start", key, len(values))
			}
			in = append(in, series{s.name, s.labels, append(slices.Clone(s.values), values...)})
		}
		sort.Slice(in, func(i, j int) bool { return in[i].promql() < in[j].promql() })
		return in
	}

	// Prometheus: one test per scenario.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(promRules(rules, 0, false)), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n")
	for _, sc := range scenarios {
		fmt.Fprintf(&b, "  - name: %q\n    interval: 1m\n    input_series:\n", "cold start, "+sc.rule)
		for _, s := range inputs(sc) {
			fmt.Fprintf(&b, "      - series: '%s'\n        values: '%s'\n", s.promql(), promValues(s.values))
		}
		b.WriteString("    alert_rule_test:\n")
		for _, r := range rules {
			fmt.Fprintf(&b, "      - eval_time: %dm\n        alertname: %s\n        exp_alerts:", at, r.Name)
			if r.Name != sc.rule {
				b.WriteString(" []\n")
				continue
			}
			labels := fmt.Sprintf("severity: %s, family: %s", r.Severity, r.Family)
			for k, v := range sc.labels {
				labels += fmt.Sprintf(", %s: %s", k, v)
			}
			fmt.Fprintf(&b, "\n          - exp_labels: {%s}\n", labels)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "test.yml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}

	// The built-in evaluator, on the same minutes.
	for _, sc := range scenarios {
		var got []string
		for _, a := range replayAlerts(t, cfg, rules, inputs(sc), at) {
			if a.State == StateFiring {
				got = append(got, fmt.Sprintf("%s%v", a.Rule, a.Labels))
			}
		}
		var want []string
		if sc.rule != "" {
			want = []string{fmt.Sprintf("%s%v", sc.rule, sc.labels)}
		}
		if !slices.Equal(got, want) {
			t.Errorf("built-in evaluator, cold start then %s's traffic: firing %v at minute %d, want %v", sc.rule, got, at, want)
		}
	}
	if t.Failed() {
		t.Logf("--- test.yml\n%s", b.String())
	}
}

// parseSelector parses name{k="v",…} as series.promql renders it.
func parseSelector(t *testing.T, sel string) series {
	t.Helper()
	name, rest, ok := strings.Cut(sel, "{")
	s := series{name: name, labels: map[string]string{}}
	if !ok {
		return s
	}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("selector %s", sel)
		}
		s.labels[k] = strings.Trim(v, `"`)
	}
	return s
}
