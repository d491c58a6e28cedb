package postgres

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestTrackSlowKeepsTheSlowestAndLogsNoArguments(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	tr := NewTracer(TracerConfig{SlowThreshold: time.Millisecond, SlowKeep: 2, LogEvery: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	slow := func(sql string, d time.Duration, args ...any) {
		tr.trackSlow(&queryStart{info: tr.newInfo("test.slow"), sql: sql, args: args}, d)
	}
	slow("SELECT a FROM t WHERE secret = $1", 50*time.Millisecond, "secret-value-1")
	slow("SELECT a FROM t WHERE secret = $1", 80*time.Millisecond, "secret-value-2")
	slow("SELECT b", 10*time.Millisecond)
	slow("SELECT c", 30*time.Millisecond) // evicts SELECT b, the least slow
	slow("SELECT d", 5*time.Millisecond)  // slower than none kept: dropped

	got := tr.Slowest()
	if len(got) != 2 || got[0].SQL != "SELECT a FROM t WHERE secret = $1" || got[1].SQL != "SELECT c" {
		t.Fatalf("kept %+v, want the statements of 80 ms and 30 ms", got)
	}
	a := got[0]
	if a.Count != 2 || a.Max != 80*time.Millisecond || a.Total != 130*time.Millisecond || len(a.Args) != 1 || a.Args[0] != "secret-value-2" {
		t.Errorf("slowest = %+v, want 2 executions, max 80 ms, the slowest's arguments", a)
	}
	out := logs.String()
	if strings.Contains(out, "secret-value") {
		t.Errorf("arguments logged: %s", out)
	}
	if n := strings.Count(out, "slow_query"); n != 1 {
		t.Errorf("%d slow_query lines for one label within LogEvery, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "label=test.slow") || !strings.Contains(out, "secret = $1") {
		t.Errorf("slow_query line lacks the label or the text: %s", out)
	}
}

func TestLabelOfTransactionControl(t *testing.T) {
	t.Parallel()
	for sql, want := range map[string]string{"begin": "tx.begin", "COMMIT": "tx.commit", "-- name: a.b\nSELECT 1": "a.b"} {
		if got := labelOf(sql); got != want {
			t.Errorf("labelOf(%q) = %q, want %q", sql, got, want)
		}
	}
}
