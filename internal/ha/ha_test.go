package ha_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"hmp/internal/ha"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fast are Patroni settings that fail over in seconds (the suite's).
func fast(t *testing.T, log *strings.Builder) ha.Config {
	parent := t.TempDir()
	// The servers run as the postgres user when the test runs as root.
	for _, d := range []string{filepath.Dir(parent), parent} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return ha.Config{TTL: 10, LoopWait: 1, RetryTimeout: 3, TempDir: parent, Log: log}
}

// TestKillLeader kills the leader and waits for the standby's promotion,
// then brings the old leader back as a standby.
func TestKillLeader(t *testing.T) {
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := ha.Start(ctx, fast(t, &log))
	if err != nil {
		t.Fatalf("start: %v\n%s", err, log.String())
	}
	defer c.Stop()
	old, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(old); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	leader, err := c.Leader(ctx)
	for err != nil || leader == old {
		time.Sleep(100 * time.Millisecond)
		leader, err = c.Leader(ctx)
	}
	t.Logf("promoted %s in %s", leader.Name, time.Since(t0))
	if err := c.Restart(old); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("healthy again after %s", time.Since(t0))
	c.Stop()
	c.Stop()
}
