package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/postgres"
	"hmp/internal/postgres/pgtest"
)

// ownerEnv makes the test binary a stand-in for `hmp serve`: it starts the
// local cluster of the named folder, prints its URL and waits to be killed.
const ownerEnv = "HMP_TEST_LOCAL_OWNER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(ownerEnv); dir != "" {
		os.Exit(runOwner(dir))
	}
	pgtest.Main(m, &cluster)
}

func runOwner(dir string) int {
	l, err := postgres.StartLocal(context.Background(), postgres.LocalConfig{Dir: dir})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("url:", l.URL())
	select {} // until killed
}

// startOwner runs a separate process that owns the cluster of dir, as
// `hmp serve` does, and returns it with the cluster's URL.
func startOwner(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), ownerEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "url: ") {
		t.Fatalf("owner process: %q %v", line, err)
	}
	return cmd, strings.TrimSpace(strings.TrimPrefix(line, "url: "))
}

// TestStartLocalAfterOwnerKilled is the operator's restart after kill -9:
// the process owning the cluster dies without stopping it, the orphaned
// server is still running or shutting down and holds postmaster.pid, and a
// new start right away must take the cluster over with every committed row.
func TestStartLocalAfterOwnerKilled(t *testing.T) {
	dir, err := os.MkdirTemp("", "hmp-local-orphan-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	for round := 1; round <= 3; round++ {
		owner, url := startOwner(t, dir)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS kept (round int PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO kept VALUES ($1)`, round); err != nil {
			t.Fatal(err)
		}
		// An open session makes the orphan's shutdown slower, as a
		// serving hmp's pool does.
		if err := owner.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = owner.Wait()

		l, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: dir})
		if err != nil {
			conn.Close(ctx)
			t.Fatalf("round %d: start after kill -9: %v", round, err)
		}
		conn.Close(ctx)
		c2, err := pgx.Connect(ctx, l.URL())
		if err != nil {
			t.Fatal(err)
		}
		var n, sum int
		err = c2.QueryRow(ctx, `SELECT count(*), coalesce(sum(round), 0) FROM kept`).Scan(&n, &sum)
		c2.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != round || sum != round*(round+1)/2 {
			t.Fatalf("round %d: %d rows summing to %d, want %d summing to %d", round, n, sum, round, round*(round+1)/2)
		}
		// The new start owns the cluster (it does not merely attach to
		// the dying one): stopping it stops the server.
		done := make(chan error, 1)
		go func() { done <- l.Stop() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(90 * time.Second):
			t.Fatal("stop did not return")
		}
		if _, err := pgx.Connect(ctx, l.URL()); err == nil {
			t.Fatalf("round %d: server still answers after Stop: the new start attached instead of owning it", round)
		}
	}
}

// TestStartLocalSizedForTheMachine: a durable private cluster gets its
// memory settings from the machine's memory, and a configured setting
// overrides the sizing.
func TestStartLocalSizedForTheMachine(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "hmp-local-sized-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: dir, Settings: map[string]string{"work_mem": "12MB"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	mem, err := postgres.MachineMemory()
	if err != nil {
		t.Fatal(err)
	}
	want := postgres.SizeFor(mem, 400).Settings
	conn, err := pgx.Connect(ctx, l.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for name, value := range map[string]string{
		"work_mem":             "12MB",
		"shared_buffers":       want["shared_buffers"],
		"effective_cache_size": want["effective_cache_size"],
	} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT pg_size_pretty(pg_size_bytes(current_setting($1)))", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		var wanted string
		if err := conn.QueryRow(ctx, "SELECT pg_size_pretty(pg_size_bytes($1))", value).Scan(&wanted); err != nil {
			t.Fatal(err)
		}
		if got != wanted {
			t.Errorf("%s = %s, want %s", name, got, wanted)
		}
	}
}
