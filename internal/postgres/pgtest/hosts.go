package pgtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/postgres"
)

// TwoHosts are two independent clusters of a test's own, A writable and B
// read-only until Promote (default_transaction_read_only, which
// target_session_attrs=read-write rejects as a standby), with the same
// credentials and migrations, and a multi-host URL naming A first. A
// may be frozen (Local.Freeze): it is thawed before it is stopped.
type TwoHosts struct {
	A, B *postgres.Local
	// URL names A then B, target_session_attrs=read-write.
	URL string
	// AURL and BURL name one host each (the shared password).
	AURL, BURL string
}

// StartTwoHosts starts the pair, migrated with sets, stopped and removed
// when the test ends.
func StartTwoHosts(tb testing.TB, sets ...postgres.MigrationSet) *TwoHosts {
	tb.Helper()
	a, b := startOwn(tb), startOwn(tb)
	au, err := url.Parse(a.URL())
	if err != nil {
		tb.Fatal(err)
	}
	password, _ := au.User.Password()
	bu, err := url.Parse(b.URL())
	if err != nil {
		tb.Fatal(err)
	}
	exec(tb, b.URL(), fmt.Sprintf(`ALTER ROLE hmp PASSWORD '%s'`, password))
	bu.User = au.User
	h := &TwoHosts{A: a, B: b, AURL: a.URL(), BURL: bu.String(),
		URL: fmt.Sprintf("postgres://%s@%s,%s%s?sslmode=disable&target_session_attrs=read-write",
			au.User.String(), a.Addr(), b.Addr(), au.Path)}
	for _, u := range []string{h.AURL, h.BURL} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		pool, err := postgres.Open(ctx, u, postgres.PoolConfig{MaxConns: 2, MinConns: 1})
		if err == nil {
			err = postgres.Migrate(ctx, pool, slog.New(slog.DiscardHandler), sets...)
			pool.Close()
		}
		cancel()
		if err != nil {
			tb.Fatalf("migrate: %v", err)
		}
	}
	exec(tb, h.BURL, `ALTER SYSTEM SET default_transaction_read_only = on`, `SELECT pg_reload_conf()`)
	return h
}

// Pool opens a pool of at most maxConns connections (two kept open) on
// the multi-host URL, over a postgres.Hosts that probes both every 200 ms
// so that a frozen or demoted host is seen soon; both end with the test.
func (h *TwoHosts) Pool(tb testing.TB, maxConns int32) (*pgxpool.Pool, *postgres.Hosts) {
	tb.Helper()
	ctx := context.Background()
	hosts, err := postgres.NewHosts(h.URL, postgres.HostsConfig{Interval: 200 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	pool, err := postgres.Open(ctx, h.URL, postgres.PoolConfig{MaxConns: maxConns, MinConns: 2, Hosts: hosts})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	if err := hosts.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(hosts.Stop)
	return pool, hosts
}

// Promote makes B writable, as a promotion would.
func (h *TwoHosts) Promote(tb testing.TB) {
	tb.Helper()
	exec(tb, h.BURL, `SET default_transaction_read_only = off`,
		`ALTER SYSTEM SET default_transaction_read_only = off`, `SELECT pg_reload_conf()`)
}

// Port is l's port.
func Port(tb testing.TB, l *postgres.Local) int {
	tb.Helper()
	u, err := url.Parse(l.URL())
	if err != nil {
		tb.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func startOwn(tb testing.TB) *postgres.Local {
	tb.Helper()
	dir, err := os.MkdirTemp("", "hmp-pgtest-host-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	l, err := postgres.StartLocal(context.Background(), postgres.LocalConfig{Dir: dir, Ephemeral: true, NoStatStatements: true})
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = l.Stop()
		_ = os.RemoveAll(dir)
	})
	tb.Cleanup(l.Thaw) // runs first: a frozen server cannot stop
	return l
}

func exec(tb testing.TB, dbURL string, sql ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
}
