package telemetry

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/clocktest"
)

// series is one input series, a value per minute.
type series struct {
	name   string
	labels map[string]string
	values []float64
}

func (s series) promql() string {
	var parts []string
	for k, v := range s.labels {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return s.name + "{" + strings.Join(parts, ",") + "}"
}

// replay exports the series' values at the current minute.
type replay struct {
	mu     sync.Mutex
	minute int
	series []series
}

func (r *replay) Describe(chan<- *prometheus.Desc) {} // unchecked collector

func (r *replay) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.series {
		var keys, vals []string
		for k, v := range s.labels {
			keys, vals = append(keys, k), append(vals, v)
		}
		if math.IsNaN(s.values[r.minute]) { // absent at this minute
			continue
		}
		d := prometheus.NewDesc(s.name, "replayed", keys, nil)
		ch <- prometheus.MustNewConstMetric(d, prometheus.UntypedValue, s.values[r.minute], vals...)
	}
}

// replayAlerts runs the built-in evaluator with cfg and rules over in,
// once a minute from minute 0 to at on a clock of its own, and returns its
// alerts after minute at.
func replayAlerts(t *testing.T, cfg Config, rules []Rule, in []series, at int) []Alert {
	t.Helper()
	start := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	c := clocktest.New(start)
	rp := &replay{series: in}
	reg := prometheus.NewRegistry()
	reg.MustRegister(rp)
	cfg.Now = c.Now
	e := NewEvaluator(cfg, rules, reg, nil, nil)
	for m := 0; m <= at; m++ {
		rp.mu.Lock()
		rp.minute = m
		rp.mu.Unlock()
		c.Set(start.Add(time.Duration(m) * time.Minute))
		if err := e.Evaluate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return e.Alerts()
}

func ramp(start, step float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = start + step*float64(i)
	}
	return out
}

func flat(v float64, n int) []float64 { return ramp(v, 0, n) }

// TestPrometheusAgrees feeds the same series, minute by minute, to
// Prometheus (promtool test rules, on the file hmp alerts rules prints)
// and to the built-in evaluator, and expects the same alerts from both:
// the rules mean one thing wherever they are evaluated.
func TestPrometheusAgrees(t *testing.T) {
	promtool := lookPromtool(t)
	t.Parallel()
	const minutes, at = 16, 12
	backlog := append(flat(0, 5), flat(1500, minutes-5)...)
	in := []series{
		{"hmp_consumer_pending", map[string]string{"consumer": "reports"}, backlog},
		{"hmp_outbox_unpublished", nil, flat(3, minutes)},
		{"hmp_cache_hits_total", map[string]string{"tier": "memory"}, ramp(100, 6, minutes)},
		{"hmp_cache_misses_total", map[string]string{"tier": "memory"}, ramp(0, 4, minutes)},
		{"hmp_cache_hits_total", map[string]string{"tier": "redis"}, ramp(0, 9, minutes)},
		{"hmp_cache_misses_total", map[string]string{"tier": "redis"}, ramp(0, 1, minutes)},
		{"hmp_db_pool_acquired_conns", map[string]string{"pool": "primary"}, flat(9, minutes)},
		{"hmp_db_pool_max_conns", map[string]string{"pool": "primary"}, flat(10, minutes)},
		{"hmp_db_pool_acquired_conns", map[string]string{"pool": "replica"}, flat(2, minutes)},
		{"hmp_db_pool_max_conns", map[string]string{"pool": "replica"}, flat(10, minutes)},
		{"hmp_db_lock_waiting_sessions", nil, flat(1, minutes)},
		{"hmp_db_active_sessions", nil, flat(20, minutes)}, // 5 %: no alert
	}
	for le, step := range map[string]float64{"0.5": 9, "1": 9, "2": 9, "4": 10, "+Inf": 10} {
		in = append(in, series{"hmp_projector_batch_seconds_bucket", map[string]string{"le": le}, ramp(0, step, minutes)})
	}
	for _, result := range []string{"acked", "retried"} {
		step := map[string]float64{"acked": 99, "retried": 1}[result] // 1 %: no alert
		in = append(in, series{"hmp_consumer_messages_total", map[string]string{"consumer": "reports", "result": result}, ramp(0, step, minutes)})
	}
	type fired struct {
		rule   string
		labels string
	}
	want := []fired{
		{"HMPBusBacklogHigh", ""},
		{"HMPBusProcessingSlow", ""},
		{"HMPCacheHitRateLow", "tier=memory"},
		{"HMPDBPoolSaturated", "pool=primary"},
	}
	cfg := Config{Window: 5 * time.Minute, For: 2 * time.Minute, Interval: time.Minute}
	rules := Rules(cfg)

	// Prometheus.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(promRules(rules, 0, false)), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n")
	for _, s := range in {
		vals := make([]string, len(s.values))
		for i, v := range s.values {
			vals[i] = fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "      - series: '%s'\n        values: '%s'\n", s.promql(), strings.Join(vals, " "))
	}
	b.WriteString("    alert_rule_test:\n")
	for _, r := range rules {
		fmt.Fprintf(&b, "      - eval_time: %dm\n        alertname: %s\n        exp_alerts:", at, r.Name)
		var exp []string
		for _, w := range want {
			if w.rule != r.Name {
				continue
			}
			labels := fmt.Sprintf("severity: %s, family: %s", r.Severity, r.Family)
			if k, v, ok := strings.Cut(w.labels, "="); ok {
				labels += ", " + k + ": " + v
			}
			exp = append(exp, "\n          - exp_labels: {"+labels+"}")
		}
		if len(exp) == 0 {
			b.WriteString(" []\n")
		} else {
			b.WriteString(strings.Join(exp, "") + "\n")
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "test.yml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n--- test.yml\n%s", err, out, b.String())
	}

	// The built-in evaluator, on the same minutes.
	var got []fired
	for _, a := range replayAlerts(t, cfg, rules, in, at) {
		if a.State != StateFiring {
			continue
		}
		var l []string
		for k, v := range a.Labels {
			l = append(l, k+"="+v)
		}
		got = append(got, fired{a.Rule, strings.Join(l, ",")})
	}
	slices.SortFunc(got, func(x, y fired) int { return strings.Compare(x.rule, y.rule) })
	if !slices.Equal(got, want) {
		t.Fatalf("built-in evaluator fired %v at minute %d; Prometheus fired %v", got, at, want)
	}
}
