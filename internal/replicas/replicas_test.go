package replicas_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/replicas"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, &cluster) }

type bundle struct {
	primary *pgxpool.Pool
	replica *pgtest.Replica
	direct  *pgxpool.Pool // straight to the replica, to pause and resume its replay
	router  *replicas.Router
	reg     *prometheus.Registry
}

func setup(t *testing.T, cfg replicas.Config) bundle {
	t.Helper()
	url, b := startPair(t)
	cfg.URLs = []string{b.replica.DatabaseURL(url)}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = time.Hour // the tests call Check themselves
	}
	b.startRouter(t, cfg)
	return b
}

// startPair gives the test a database of its own holding a counter row
// and a streaming replica of it: the bundle without a router, and the
// primary's URL.
func startPair(t *testing.T) (string, bundle) {
	t.Helper()
	ctx := context.Background()
	url := cluster.NewDatabase(t)
	primary, err := postgres.Open(ctx, url, postgres.PoolConfig{MaxConns: 4, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(primary.Close)
	if _, err := primary.Exec(ctx, `CREATE TABLE counter (id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO counter VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	rep := cluster.NewReplica(t)
	direct, err := postgres.OpenLazy(ctx, rep.DatabaseURL(url), postgres.PoolConfig{MaxConns: 2, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	return url, bundle{primary: primary, replica: rep, direct: direct}
}

// startRouter starts b's router over its primary with cfg, stopped at
// cleanup.
func (b *bundle) startRouter(t *testing.T, cfg replicas.Config) {
	t.Helper()
	ctx := context.Background()
	b.reg = prometheus.NewRegistry()
	r, err := replicas.New(ctx, b.primary, cfg, nil, b.reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.router = r
}

// write bumps the counter on the primary and returns the new value and a
// token for it.
func (b bundle) write(t *testing.T) (int64, domain.Token) {
	t.Helper()
	var (
		n   int64
		tok domain.Token
	)
	ctx := context.Background()
	if err := b.primary.QueryRow(ctx, `UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n, pg_current_xact_id()::text::bigint`).Scan(&n, &tok.TxID); err != nil {
		t.Fatal(err)
	}
	lsn, err := b.router.PrimaryLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok.LSN = lsn
	return n, tok
}

// read returns the counter as the router serves it, and where it ran.
func (b bundle) read(t *testing.T, tok *domain.Token) (int64, string) {
	t.Helper()
	var n int64
	var where string
	_, err := b.router.Read(context.Background(), tok, func(db *pgxpool.Pool) error {
		return db.QueryRow(context.Background(), `SELECT n, CASE WHEN pg_is_in_recovery() THEN 'replica' ELSE 'primary' END FROM counter WHERE id = 1`).Scan(&n, &where)
	})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return n, where
}

func (b bundle) waitReplayed(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var caughtUp bool
		var target int64
		lsn, err := b.router.PrimaryLSN(ctx)
		if err != nil {
			t.Fatal(err)
		}
		target = int64(lsn)
		if err := b.direct.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0') >= $1`, target).Scan(&caughtUp); err != nil {
			t.Fatal(err)
		}
		if caughtUp {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("replica did not catch up")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// healthy checks until the replica counts as healthy: a check bounds the
// lag by the primary's earlier samples, so the first may find it stale.
func (b bundle) healthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.waitReplayed(t)
		b.router.Check(context.Background())
		if b.router.Statuses()[0].State == replicas.Healthy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica never healthy: %+v", b.router.Statuses())
		}
	}
}

func TestRouterServesFromHealthyReplica(t *testing.T) {
	t.Parallel()
	b := setup(t, replicas.Config{})
	b.healthy(t)
	if got := b.router.Statuses(); len(got) != 1 || got[0] != (replicas.Status{Name: "replica-1", State: replicas.Healthy}) {
		t.Fatalf("statuses = %+v, want replica-1 healthy", got)
	}
	if n, where := b.read(t, nil); where != "replica" || n != 0 {
		t.Fatalf("tokenless read: n=%d on %s, want 0 on the replica", n, where)
	}
	if got := testutil.ToFloat64(b.router.Metrics().Reads("replica")); got != 1 {
		t.Errorf("hmp_db_reads_total{target=replica} = %v, want 1", got)
	}
	// A token read: the replica replays quickly, so it serves it, and it
	// is never older than the write.
	for range 20 {
		want, tok := b.write(t)
		if n, _ := b.read(t, &tok); n < want {
			t.Fatalf("token read saw %d, before its write %d", n, want)
		}
	}
	b.router.SetEnabled(false)
	if _, where := b.read(t, nil); where != "primary" {
		t.Errorf("with replica reads off, a read ran on the %s", where)
	}
}

func TestRouterPausedReplay(t *testing.T) {
	t.Parallel()
	b := setup(t, replicas.Config{MaxLag: time.Hour, TokenWait: 20 * time.Millisecond})
	ctx := context.Background()
	b.healthy(t)
	if _, err := b.direct.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = b.direct.Exec(context.Background(), `SELECT pg_wal_replay_resume()`) })
	wrote := time.Now()
	want, tok := b.write(t)
	// The write is not replayed: a token read goes to the primary...
	if n, where := b.read(t, &tok); n != want || where != "primary" {
		t.Fatalf("token read: n=%d on %s, want %d on the primary", n, where, want)
	}
	// ...and even a c1 token (no position of its own) needs the primary's
	// current position.
	if n, where := b.read(t, &domain.Token{TxID: tok.TxID}); n != want || where != "primary" {
		t.Fatalf("c1 token read: n=%d on %s, want %d on the primary", n, where, want)
	}
	// Without a token, the replica's older answer is within the maximum lag.
	if n, where := b.read(t, nil); where != "replica" || n != want-1 {
		t.Fatalf("tokenless read: n=%d on %s, want %d from the replica", n, where, want-1)
	}
	b.router.Check(ctx)
	if v := testutil.ToFloat64(b.router.Metrics().LagBytes("replica")); v <= 0 {
		t.Errorf("hmp_replica_lag_bytes = %v with replay paused behind a write", v)
	}
	// The replica's answer says how old it may be: from before the write.
	asOf, err := b.router.Read(ctx, nil, func(db *pgxpool.Pool) error { return db.Ping(ctx) })
	if err != nil || asOf.IsZero() || !asOf.Before(wrote) {
		t.Errorf("a read on the paused replica is as of %v (%v), want before the write at %v", asOf, err, wrote)
	}
	if _, err := b.direct.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	b.waitReplayed(t)
	if n, where := b.read(t, &tok); n != want || where != "replica" {
		t.Fatalf("token read after the replay: n=%d on %s, want %d on the replica", n, where, want)
	}
}

func TestRouterLaggingReplicaIsSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t, replicas.Config{MaxLag: 50 * time.Millisecond})
	ctx := context.Background()
	b.waitReplayed(t)
	if _, err := b.direct.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = b.direct.Exec(context.Background(), `SELECT pg_wal_replay_resume()`) })
	b.router.Check(ctx) // a sample of the primary the replica has replayed
	want, _ := b.write(t)
	// Wait until the replica is measurably older than the maximum lag.
	deadline := time.Now().Add(30 * time.Second)
	for b.router.Statuses()[0].State != replicas.Lagging {
		if time.Now().After(deadline) {
			t.Fatalf("replica never counted as lagging: %+v", b.router.Statuses())
		}
		<-time.After(20 * time.Millisecond) // the lag is wall time: let some pass
		b.router.Check(ctx)
	}
	if n, where := b.read(t, nil); where != "primary" || n != want {
		t.Fatalf("read past the maximum lag: n=%d on %s, want %d on the primary", n, where, want)
	}
	if v := testutil.ToFloat64(b.router.Metrics().Healthy("replica")); v != 0 {
		t.Errorf("hmp_replica_healthy = %v for a lagging replica", v)
	}
}

func TestRouterKilledReplica(t *testing.T) {
	t.Parallel()
	b := setup(t, replicas.Config{})
	ctx := context.Background()
	b.healthy(t)
	if _, where := b.read(t, nil); where != "replica" {
		t.Fatalf("first read ran on the %s", where)
	}
	b.replica.Kill()
	// The pool still believes in its connections: the next read fails
	// there and runs again on the primary, without an error.
	for i := range 5 {
		want, tok := b.write(t)
		if n, where := b.read(t, nil); where != "primary" || n != want {
			t.Fatalf("read %d after the kill: n=%d on %s, want %d on the primary", i, n, where, want)
		}
		if n, _ := b.read(t, &tok); n != want {
			t.Fatalf("token read %d after the kill: n=%d, want %d", i, n, want)
		}
	}
	b.router.Check(ctx)
	if got := b.router.Statuses()[0].State; got != replicas.Down {
		t.Errorf("killed replica is %s, want down", got)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	if got := replicas.ParseURLs(" postgres://a/x , ,postgres://b/x"); len(got) != 2 || got[1] != "postgres://b/x" {
		t.Errorf("ParseURLs = %q", got)
	}
	err := replicas.Config{URLs: []string{"postgres://u:secret@host:notaport/db"}, MaxLag: -1}.WithDefaults().Validate()
	if err == nil {
		t.Fatal("a bad url and a negative lag were accepted")
	}
	if msg := err.Error(); strings.Contains(msg, "secret") {
		t.Errorf("validation echoes the password: %s", msg)
	}
}

// Reads names where report reads go: the replicas when configured and on,
// else the primary and why; the live switch moves it.
func TestReadsSaysWhereReadsGo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const url = "postgres://hmp@127.0.0.1:1/hmp" // never connected: the router is not started
	for _, c := range []struct {
		name string
		cfg  replicas.Config
		want string
	}{
		{"none configured", replicas.Config{}, replicas.ReadsPrimaryNone},
		{"configured and on", replicas.Config{URLs: []string{url}}, replicas.ReadsReplicas},
		{"configured and off", replicas.Config{URLs: []string{url}, Disabled: true}, replicas.ReadsPrimaryOff},
	} {
		r, err := replicas.New(ctx, nil, c.cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
		if got := r.Reads(); got != c.want {
			t.Errorf("%s: reads go to %q, want %q", c.name, got, c.want)
		}
	}
	r, err := replicas.New(ctx, nil, replicas.Config{URLs: []string{url}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	r.SetEnabled(false)
	if got := r.Reads(); got != replicas.ReadsPrimaryOff {
		t.Errorf("after the live switch off: %q", got)
	}
}
