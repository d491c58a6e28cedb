package chaos_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"hmp/internal/chaos"
	"hmp/internal/proc/proctest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestShortRun is the short form of `hmp chaos`: a few seconds of writes
// through a kill -9 of hmp and an immediate restart of PostgreSQL, with
// every check of the full run.
func TestShortRun(t *testing.T) {
	bin := proctest.BuildHMP(t)
	var log strings.Builder
	parent := t.TempDir()
	// The embedded cluster runs as the postgres user when the test runs
	// as root: it must be able to enter the folders.
	for _, d := range []string{filepath.Dir(parent), parent} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, chaos.Config{
		Binary: bin, Duration: 6 * time.Second, Rate: 40, Orgs: 2, Writers: 16,
		Faults:   []string{chaos.FaultKill, chaos.FaultPostgresImmediate},
		RetryFor: time.Minute, Log: &log, TempDir: parent,
	})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	var out strings.Builder
	rep.Print(&out)
	t.Log(out.String())
	if !rep.OK() {
		t.Fatalf("chaos run found losses:\n%s", out.String())
	}
	if rep.Acknowledged < 100 {
		t.Fatalf("only %d writes acknowledged", rep.Acknowledged)
	}
	if len(rep.Faults) != 2 || rep.Faults[0].Name != chaos.FaultKill || rep.Faults[1].Name != chaos.FaultPostgresImmediate {
		t.Fatalf("faults %+v", rep.Faults)
	}
	if rep.Rows < rep.Acknowledged {
		t.Fatalf("%d rows for %d acknowledged writes", rep.Rows, rep.Acknowledged)
	}
	if entries, err := os.ReadDir(parent); err != nil || len(entries) > 0 {
		t.Errorf("run folder left behind in %s: %v %v", parent, entries, err)
	}
}
