package postgres_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/postgres"
	"hmp/internal/postgres/pgtest"
)

// writesSet is the one table these tests write to.
var writesSet = postgres.MigrationSet{Name: "hoststest", FS: fstest.MapFS{
	"00001_writes.sql": {Data: []byte("-- +goose Up\nCREATE TABLE writes (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());\n")},
}}

// write inserts a row and returns the port of the server that took it.
func write(ctx context.Context, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var port int
	err := db.QueryRow(ctx, `INSERT INTO writes DEFAULT VALUES RETURNING inet_server_port()`).Scan(&port)
	return port, err
}

// A frozen primary (SIGSTOP: connections accepted, never answered) must
// not stall writes: each attempt (a request's deadline) gives up on it
// within the connect timeout, pooled connections to it are dropped once
// it is seen down, and the next host, promoted, takes the writes. Without
// the connect timeout every attempt spends its whole deadline on the
// first host and the test's deadline passes.
func TestFrozenPrimaryDoesNotStallWrites(t *testing.T) {
	t.Parallel()
	h := pgtest.StartTwoHosts(t, writesSet)
	ctx := context.Background()
	pool, hosts := h.Pool(t, 4)
	if port, err := write(ctx, pool); err != nil || port != pgtest.Port(t, h.A) {
		t.Fatalf("first write on port %d (%v), want the first host %d", port, err, pgtest.Port(t, h.A))
	}
	h.A.Freeze()
	h.Promote(t)

	// Writes retried as clients do, each with a request's deadline: one
	// must land on b before the test's own deadline.
	deadline, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var lastErr error
	for {
		actx, acancel := context.WithTimeout(deadline, 3*time.Second)
		port, err := write(actx, pool)
		acancel()
		if err == nil {
			if port != pgtest.Port(t, h.B) {
				t.Fatalf("write landed on port %d, want the promoted host %d", port, pgtest.Port(t, h.B))
			}
			break
		}
		lastErr = err
		if deadline.Err() != nil {
			t.Fatalf("no write succeeded with the first host frozen: %v", lastErr)
		}
	}
	// The hosts say so, and the frozen one is tried last from now on.
	m := hosts.Members()
	if len(m) != 2 || m[0].Role != postgres.RoleDown || m[1].Role != postgres.RolePrimary {
		t.Errorf("members = %+v, want the first down and the second primary", m)
	}
	for range 5 {
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := write(wctx, pool)
		wcancel()
		if err != nil {
			t.Fatalf("a write after the switch failed: %v", err)
		}
	}
}

// Without a prober, the pool learns from its own attempts: after a new
// connection timed out on the frozen first host, the next new connection
// tries the host that answered read-write first.
func TestHostOrderLearnsFromConnects(t *testing.T) {
	t.Parallel()
	h := pgtest.StartTwoHosts(t, writesSet)
	h.A.Freeze()
	h.Promote(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The URL's own connect timeout (5 s) is kept, not the default.
	pool, err := postgres.OpenLazy(ctx, h.URL+"&connect_timeout=5", postgres.PoolConfig{MaxConns: 4, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// The first connection tries a, gives up after the connect timeout,
	// and lands on b. Without a connect timeout it would wait out ctx.
	first, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if port, err := write(ctx, first); err != nil || port != pgtest.Port(t, h.B) {
		t.Fatalf("first write on port %d (%v), want %d", port, err, pgtest.Port(t, h.B))
	}
	first.Release()
	// A new connection (the old ones closed) goes to b first, well within
	// 4 s, where trying a first costs 5.
	pool.Reset()
	sctx, scancel := context.WithTimeout(ctx, 4*time.Second)
	defer scancel()
	second, err := pool.Acquire(sctx)
	if err != nil {
		t.Fatalf("a second connection with b known read-write: %v", err)
	}
	defer second.Release()
	if port, err := write(sctx, second); err != nil || port != pgtest.Port(t, h.B) {
		t.Fatalf("second write on port %d (%v), want %d", port, err, pgtest.Port(t, h.B))
	}
}
