// Package pgtest gives a test binary one throwaway PostgreSQL cluster,
// migrated once into a template database, and hands each test its own
// database cloned from that template.
//
//	var db *pgtest.Cluster
//
//	func TestMain(m *testing.M) { pgtest.Main(m, &db, tools.Migrations()...) }
//
//	func TestX(t *testing.T) { pool := db.NewPool(t) ... }
package pgtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"hmp/internal/postgres"
)

// Cluster is a running throwaway cluster with a migrated template.
type Cluster struct {
	Local *postgres.Local
	dir   string
	mu    sync.Mutex // CREATE DATABASE ... TEMPLATE needs the template unused
	n     int
}

const templateDB = "hmp_template"

// Main starts the cluster, runs the tests, tears the cluster down and fails
// the run if any goroutine outlived the tests. A cluster that cannot start
// fails the run: tests never skip for want of a database.
func Main(m *testing.M, c **Cluster, sets ...postgres.MigrationSet) {
	MainWith(m, c, Options{}, sets...)
}

// Options are a test cluster's opt-ins.
type Options struct {
	// StatStatements preloads pg_stat_statements and creates it, and hypopg
	// when installed, in the template (for the index advisor's tests).
	StatStatements bool
}

// MainWith is Main with options.
func MainWith(m *testing.M, c **Cluster, opts Options, sets ...postgres.MigrationSet) {
	cl, err := StartWith(context.Background(), opts, sets...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		os.Exit(1)
	}
	*c = cl
	code := m.Run()
	cl.Close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Start initialises a cluster in a temporary folder and migrates the
// template database.
func Start(ctx context.Context, sets ...postgres.MigrationSet) (*Cluster, error) {
	return StartWith(ctx, Options{}, sets...)
}

// StartWith is Start with options.
func StartWith(ctx context.Context, opts Options, sets ...postgres.MigrationSet) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "hmp-pgtest-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	local, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: dir, Database: templateDB, Ephemeral: true,
		NoStatStatements: !opts.StatStatements})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{Local: local, dir: dir}
	pool, err := postgres.Open(ctx, local.URL(), postgres.PoolConfig{MaxConns: 4, MinConns: 1})
	if err != nil {
		c.Close()
		return nil, err
	}
	if len(sets) > 0 {
		// Without sets the template stays empty (no schema_settings
		// either): its tests choose the layout themselves.
		err = postgres.Migrate(ctx, pool, slog.New(slog.DiscardHandler), sets...)
	}
	pool.Close()
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close stops the cluster and removes its folder.
func (c *Cluster) Close() {
	_ = c.Local.Stop()
	_ = os.RemoveAll(c.dir)
}

// NewDatabase clones the template into a new database and returns its URL.
// The database lives until the cluster stops.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	c.mu.Lock()
	c.n++
	name := fmt.Sprintf("t%d", c.n)
	conn, err := pgx.Connect(ctx, c.Local.DatabaseURL("postgres"))
	if err == nil {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateDB)
		conn.Close(ctx)
	}
	c.mu.Unlock()
	if err != nil {
		tb.Fatalf("clone template database: %v", err)
	}
	return c.Local.DatabaseURL(name)
}

// NewPool returns a pool on a fresh database cloned from the template,
// closed when the test ends.
func (c *Cluster) NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := postgres.Open(context.Background(), c.NewDatabase(tb), postgres.PoolConfig{MaxConns: 20, MinConns: 1})
	if err != nil {
		tb.Fatalf("open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}
