package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAlertRulesPromtool prints the rules as `hmp alerts rules` does, with
// the guide's thresholds and with thresholds set by flags and environment,
// and has Prometheus's promtool check them.
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed (Debian package prometheus): run scripts/deps.sh, as make test does")
	}
	t.Setenv("HMP_ALERT_DB_POOL_USAGE", "0.9")
	for _, tc := range []struct {
		name string
		args []string
		want []string
		not  []string
	}{
		{"guide", nil, []string{
			`alert: HMPBusBacklogHigh`, `> 1000"`, `for: 1m`, `hmp_db_pool_acquired_conns / hmp_db_pool_max_conns) > 0.9"`,
			`histogram_quantile(0.95, sum by (le) (rate(hmp_projector_batch_seconds_bucket[5m]))) > 2"`,
			`< 0.7"`, `hmp_corrections_errors_total[5m]`, `alert: HMPDBLockContention`,
		}, nil},
		{"flags", []string{"--alert-bus-backlog", "250", "--alert-window", "2m", "--alert-for", "30s", "--alert-cache-hit-rate", "-1"},
			[]string{`> 250"`, `for: 30s`, `[2m]`}, []string{`HMPCacheHitRateLow`, `[5m]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(context.Background(), append([]string{"alerts", "rules"}, tc.args...), &out, &errOut); err != nil {
				t.Fatalf("hmp alerts rules: %v\n%s", err, errOut.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("rules lack %q:\n%s", w, out.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("rules hold %q:\n%s", n, out.String())
				}
			}
			path := filepath.Join(t.TempDir(), "hmp.rules.yml")
			if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool check rules: %v\n%s\n%s", err, res, out.String())
			}
			t.Logf("promtool: %s", strings.TrimSpace(string(res)))
		})
	}
	var errOut bytes.Buffer
	if err := run(context.Background(), []string{"alerts", "rules", "--alert-bus-error-rate", "5"}, &bytes.Buffer{}, &errOut); err == nil {
		t.Fatal("a share above 1 was accepted")
	}
}
