package ha_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"hmp/internal/chaos"
	"hmp/internal/ha"
	"hmp/internal/proc/proctest"
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
	pm := postmaster(t, c, old)
	if err := c.Kill(old); err != nil {
		t.Fatal(err)
	}
	// Reaped, not left a zombie that looks alive (PID 1 here reaps no
	// orphan).
	if _, err := os.Stat("/proc/" + strconv.Itoa(pm)); err == nil {
		t.Errorf("postmaster %d of the killed node is still in /proc", pm)
	}
	t0 := time.Now()
	// Patroni offers no event to wait on: its REST API is polled.
	leader, err := c.Leader(ctx)
	for err != nil || leader == old {
		if ctx.Err() != nil {
			t.Fatalf("no new leader: %v\n%s", err, log.String())
		}
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
	dir := c.Dir()
	c.Stop()
	c.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("topology folder %s left behind: %v", dir, err)
	}
}

// postmaster reads a node's server pid from its data folder.
func postmaster(t *testing.T, c *ha.Cluster, n *ha.Node) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir(), n.Name, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestFailoverUnderWrites is the short form of `hmp chaos --ha
// --instances 2`: two hmp serve on the topology's multi-host URL take
// creates (retried with their Idempotency-Key, alternating between the
// instances) while the primary is killed. Nothing acknowledged is lost or
// doubled, clients see only 503 with Retry-After, writes resume, every
// event is applied once (the reports match the rows on both instances,
// read with the last token whichever instance issued it), reconcile is
// clean, the dead-letter stream empty, and one relay leads at the end.
func TestFailoverUnderWrites(t *testing.T) {
	bin := proctest.BuildHMP(t)
	var log strings.Builder
	cfg := fast(t, &log)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, chaos.Config{
		Binary: bin, HA: true, Patroni: ha.Config{TTL: cfg.TTL, LoopWait: cfg.LoopWait, RetryTimeout: cfg.RetryTimeout},
		Instances: 2, Duration: 8 * time.Second, Rate: 30, Orgs: 2, Writers: 16,
		Faults: []string{chaos.FaultPrimaryLoss},
		// Longer than hmp's own request deadline (10 s): the client
		// hears hmp's answer, not its own timeout.
		RequestTimeout: 15 * time.Second,
		RetryFor:       2 * time.Minute, Log: &log, TempDir: cfg.TempDir,
	})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	var out strings.Builder
	rep.Print(&out)
	t.Log(out.String())
	if !rep.OK() {
		t.Fatalf("failover lost or broke something:\n%s\n%s", out.String(), log.String())
	}
	if rep.Acknowledged < 100 {
		t.Fatalf("only %d writes acknowledged", rep.Acknowledged)
	}
	if len(rep.Faults) != 1 || rep.Faults[0].Name != chaos.FaultPrimaryLoss || rep.Faults[0].Error != "" {
		t.Fatalf("faults %+v", rep.Faults)
	}
	for _, phase := range []map[string]int{rep.BaselineErrors, rep.Faults[0].ClientErrors} {
		for class, n := range phase {
			if class != "http 503" {
				t.Errorf("clients saw %d × %s; only 503 with Retry-After is allowed", n, class)
			}
		}
	}
	if rep.Rows < rep.Acknowledged {
		t.Fatalf("%d rows for %d acknowledged writes", rep.Rows, rep.Acknowledged)
	}
	if rep.BusEvents < rep.Acknowledged {
		t.Errorf("%d outbox events compared with the bus for %d acknowledged writes", rep.BusEvents, rep.Acknowledged)
	}
	if len(rep.RelayLeaders) == 0 || len(rep.RelayLeaders) > 2 {
		t.Errorf("relay leadership went %v; want one leader, moved at most once", rep.RelayLeaders)
	}
	if entries, err := os.ReadDir(cfg.TempDir); err != nil || len(entries) > 0 {
		t.Errorf("run folder left behind in %s: %v %v", cfg.TempDir, entries, err)
	}
}
