package pgtest

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"hmp/internal/postgres"
)

// Replica is a streaming replica of a test cluster: it holds every
// database of the primary and follows its writes.
type Replica struct {
	Local *postgres.Local
}

// NewReplica makes a streaming replica of c (pg_basebackup -R into a new
// folder), starts it on a free port and returns it once it accepts reads.
// It is stopped and removed when the test ends (Kill may end it sooner).
func (c *Cluster) NewReplica(tb testing.TB) *Replica {
	tb.Helper()
	dir, err := os.MkdirTemp("", "hmp-pgtest-replica-")
	if err != nil {
		tb.Fatalf("replica dir: %v", err)
	}
	local, err := postgres.StartStandby(context.Background(), c.Local, dir)
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatalf("start replica: %v", err)
	}
	tb.Cleanup(func() {
		_ = local.Stop()
		// Release the primary's WAL that the replica's slot holds.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := local.DropSlot(ctx); err != nil {
			tb.Errorf("replica: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	return &Replica{Local: local}
}

// DatabaseURL is the replica's connection string for the primary's
// database whose URL is primaryURL (as NewDatabase returned it).
func (r *Replica) DatabaseURL(primaryURL string) string {
	return r.Local.DatabaseURL(databaseName(primaryURL))
}

// Kill ends the replica with SIGKILL (a crash).
func (r *Replica) Kill() { r.Local.Kill() }

// databaseName is the path of a database URL.
func databaseName(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(pu.Path, "/")
}
