package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/postgres"
)

// startOwn starts a cluster of the test's own (the shared one must not be
// frozen), stopped and removed when the test ends.
func startOwn(t *testing.T) *postgres.Local {
	t.Helper()
	dir, err := os.MkdirTemp("", "hmp-hosts-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := postgres.StartLocal(context.Background(), postgres.LocalConfig{Dir: dir, Ephemeral: true, NoStatStatements: true})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = l.Stop()
		_ = os.RemoveAll(dir)
	})
	return l
}

func run(t *testing.T, dbURL string, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// twoHosts starts a primary (a) and a second cluster (b) that is read-only
// until promoted, with the same credentials, and returns a multi-host URL
// naming a first.
type twoHosts struct {
	a, b *postgres.Local
	url  string
	bURL string // b alone, with a's password (b's since the start)
}

func startTwoHosts(t *testing.T) twoHosts {
	t.Helper()
	a, b := startOwn(t), startOwn(t)
	au, err := url.Parse(a.URL())
	if err != nil {
		t.Fatal(err)
	}
	password, _ := au.User.Password()
	for _, l := range []*postgres.Local{a, b} {
		run(t, l.URL(), `CREATE TABLE writes (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`)
	}
	run(t, b.URL(), fmt.Sprintf(`ALTER ROLE hmp PASSWORD '%s'`, password),
		`ALTER SYSTEM SET default_transaction_read_only = on`, `SELECT pg_reload_conf()`)
	u := fmt.Sprintf("postgres://%s@%s,%s%s?sslmode=disable&target_session_attrs=read-write",
		au.User.String(), a.Addr(), b.Addr(), au.Path)
	bu, err := url.Parse(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	bu.User = au.User
	return twoHosts{a: a, b: b, url: u, bURL: bu.String()}
}

// promote makes b writable, as a promotion would.
func (h twoHosts) promote(t *testing.T) {
	run(t, h.bURL, `SET default_transaction_read_only = off`,
		`ALTER SYSTEM SET default_transaction_read_only = off`, `SELECT pg_reload_conf()`)
}

// write inserts a row and returns the port of the server that took it.
func write(ctx context.Context, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var port int
	err := db.QueryRow(ctx, `INSERT INTO writes DEFAULT VALUES RETURNING inet_server_port()`).Scan(&port)
	return port, err
}

func portOf(t *testing.T, l *postgres.Local) int {
	t.Helper()
	u, err := url.Parse(l.URL())
	if err != nil {
		t.Fatal(err)
	}
	var p int
	fmt.Sscan(u.Port(), &p)
	return p
}

// A frozen primary (SIGSTOP: connections accepted, never answered) must
// not stall writes: each attempt (a request's deadline) gives up on it
// within the connect timeout, pooled connections to it are dropped once
// it is seen down, and the next host, promoted, takes the writes. Without
// the connect timeout every attempt spends its whole deadline on the
// first host and the test's deadline passes.
func TestFrozenPrimaryDoesNotStallWrites(t *testing.T) {
	t.Parallel()
	h := startTwoHosts(t)
	ctx := context.Background()
	hosts, err := postgres.NewHosts(h.url, postgres.HostsConfig{Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(ctx, h.url, postgres.PoolConfig{MaxConns: 4, MinConns: 2, Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := hosts.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hosts.Stop)
	if port, err := write(ctx, pool); err != nil || port != portOf(t, h.a) {
		t.Fatalf("first write on port %d (%v), want the first host %d", port, err, portOf(t, h.a))
	}
	h.a.Freeze()
	t.Cleanup(h.a.Thaw) // before its Stop (cleanups run last first)
	h.promote(t)

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
			if port != portOf(t, h.b) {
				t.Fatalf("write landed on port %d, want the promoted host %d", port, portOf(t, h.b))
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
	h := startTwoHosts(t)
	h.a.Freeze()
	t.Cleanup(h.a.Thaw)
	h.promote(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The URL's own connect timeout (5 s) is kept, not the default.
	pool, err := postgres.OpenLazy(ctx, h.url+"&connect_timeout=5", postgres.PoolConfig{MaxConns: 4, MinConns: 1})
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
	defer first.Release()
	if port, err := write(ctx, first); err != nil || port != portOf(t, h.b) {
		t.Fatalf("first write on port %d (%v), want %d", port, err, portOf(t, h.b))
	}
	// Holding two (the pool keeps at most one more open by itself), the
	// pool must make a new connection: it goes to b first, well within
	// 4 s, where trying a first costs 5.
	other, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	sctx, scancel := context.WithTimeout(ctx, 4*time.Second)
	defer scancel()
	second, err := pool.Acquire(sctx)
	if err != nil {
		t.Fatalf("a second connection with b known read-write: %v", err)
	}
	defer second.Release()
	if port, err := write(sctx, second); err != nil || port != portOf(t, h.b) {
		t.Fatalf("second write on port %d (%v), want %d", port, err, portOf(t, h.b))
	}
}
