package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/replicas"
)

// withReplica serves report reads from rep (the test database's copy on
// it), checked often.
func withReplica(rep *pgtest.Replica) func(*config.Config) {
	return func(c *config.Config) {
		c.ReplicaURLs = []string{rep.DatabaseURL(c.DatabaseURL)}
		c.ReplicaReads = "on"
		c.Replicas.CheckInterval = 100 * time.Millisecond
		c.Replicas.Pool = postgres.PoolConfig{MaxConns: 4, MinConns: 1}
	}
}

// syncCommit makes the test database commit synchronously, as a
// production primary does (the test cluster turns it off for speed): a
// commit is then on the primary's disk, hence sendable to replicas, when
// it returns, and a read with its token can be served by a replica.
func syncCommit(c *config.Config) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.DatabaseURL)
	if err == nil {
		_, err = conn.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on', current_database()); END $$`)
		conn.Close(ctx)
	}
	if err != nil {
		panic(fmt.Sprintf("synchronous commit: %v", err))
	}
}

// metricValue reads one sample of /metrics (0 when absent).
func metricValue(env *apptest.Env, series string) float64 {
	r := env.Do("GET", "/metrics", "", nil)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// replicaState is the state /readyz gives the replica (which must answer
// 200 whatever the replica's state: the primary serves).
func replicaState(t *testing.T, env *apptest.Env) string {
	t.Helper()
	var body struct {
		Status   string `json:"status"`
		Replicas []struct{ Name, State string }
		Reads    string
	}
	env.Must(200, "GET", "/readyz", "", nil).JSON(t, &body)
	// The fixtures run the default profile: a configured replica is read.
	if body.Status != "ready" || len(body.Replicas) != 1 || body.Replicas[0].Name != "replica-1" || body.Reads != replicas.ReadsReplicas {
		t.Fatalf("readyz = %+v, want ready with replica-1", body)
	}
	return body.Replicas[0].State
}

// eventually polls cond (each poll is a request or a query) until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// Random writes through the API, each followed by a read with its token,
// compared with the cash book recomputed from the writes: while the
// replica serves, while its replay is paused (lag), and after it is killed
// (SIGKILL) mid-run. No token read is ever older than its write, no read
// fails, reads without a token are served by the healthy replica, and
// /readyz reports the replica's state while answering 200 throughout.
func TestReplicaReadsFollowTokens(t *testing.T) {
	t.Parallel()
	rep := cluster.NewReplica(t)
	f := repStart(t, "Replica Reads", syncCommit, withReplica(rep))
	prop := f.property("Harbour", "UTC")
	direct, err := postgres.OpenLazy(context.Background(), rep.DatabaseURL(f.env.App.DatabaseURL), postgres.PoolConfig{MaxConns: 1, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	eventually(t, "replica healthy", func() bool { return replicaState(t, f.env) == "healthy" })

	// The model: net cash per date (June 1..10), recomputed on every read.
	net := map[int]int64{}
	closing := func(day int) int64 {
		var sum int64
		for d, v := range net {
			if d <= day {
				sum += v
			}
		}
		return sum
	}
	rng := rand.New(rand.NewPCG(9, 9))
	step := func(phase string, i int) {
		t.Helper()
		day := 1 + rng.IntN(10)
		amount := 1 + rng.Int64N(50_000)
		kind := "revenue"
		if rng.IntN(3) == 0 {
			kind, amount = "expense", -amount
		}
		f.create(f.admin, kind, prop, max(amount, -amount), "cash", fmt.Sprintf("2026-06-%02dT10:00:00Z", day))
		net[day] += amount
		if tok, err := domain.ParseToken(f.last); err != nil || tok.LSN == 0 {
			t.Fatalf("%s %d: write token %q carries no WAL position (%v)", phase, i, f.last, err)
		}
		// Read a random date at or after the write's: its closing sums it.
		read := day + rng.IntN(11-day)
		d := f.daily(f.admin, prop, fmt.Sprintf("2026-06-%02d", read), false)
		if want := closing(read); d.ClosingBalanceCents != want {
			t.Fatalf("%s %d: token read of June %d closes at %d, want %d (write of %d on June %d)",
				phase, i, read, d.ClosingBalanceCents, want, amount, day)
		}
	}

	replicaBefore := metricValue(f.env, `hmp_db_reads_total{target="replica"}`)
	for i := range 15 {
		step("healthy", i)
	}
	if metricValue(f.env, `hmp_db_reads_total{target="replica"}`) == replicaBefore {
		t.Error("the healthy replica served none of 15 token reads")
	}
	// Reads without a token: a healthy replica serves them (the cache
	// misses: every day is read once).
	before := metricValue(f.env, `hmp_db_reads_total{target="replica"}`)
	for day := 11; day <= 20; day++ {
		f.env.Must(200, "GET", repQuery("/v1/reports/daily-report", "propertyId", prop, "date", fmt.Sprintf("2026-06-%02d", day)), f.admin, nil)
	}
	if served := metricValue(f.env, `hmp_db_reads_total{target="replica"}`) - before; served < 5 {
		t.Errorf("the healthy replica served %v of 10 reads without a token", served)
	}

	// Replay paused: the replica falls behind every write; token reads
	// must still see them (from the primary).
	if _, err := direct.Exec(context.Background(), `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	primaryBefore := metricValue(f.env, `hmp_db_reads_total{target="primary"}`)
	for i := range 10 {
		step("paused", i)
	}
	if metricValue(f.env, `hmp_db_reads_total{target="primary"}`) == primaryBefore {
		t.Error("with replay paused no token read went to the primary")
	}
	eventually(t, "lag measured", func() bool {
		return metricValue(f.env, fmt.Sprintf(`hmp_replica_lag_bytes{replica="%s"}`, rep.Local.Addr())) > 0
	})
	if _, err := direct.Exec(context.Background(), `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		step("resumed", i)
	}

	// Killed mid-run: reads carry on at the primary, without an error.
	rep.Kill()
	for i := range 15 {
		step("killed", i)
		f.env.Must(200, "GET", repQuery("/v1/reports/daily-report", "propertyId", prop, "date", fmt.Sprintf("2026-05-%02d", 1+i)), f.admin, nil)
	}
	eventually(t, "replica down", func() bool { return replicaState(t, f.env) == "down" })
	if v := metricValue(f.env, fmt.Sprintf(`hmp_replica_healthy{replica="%s"}`, rep.Local.Addr())); v != 0 {
		t.Errorf("hmp_replica_healthy = %v for a killed replica", v)
	}
}

// The live settings start from the configured replica reads (not the
// profile's alone): applying the seed at start must leave the router as
// HMP_REPLICA_READS set it, and the setting counts as modified.
func TestReplicaReadsLiveSettingFollowsConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		profile, set string
		want         bool
	}{{"baseline", "on", true}, {"phase2", "off", false}} {
		t.Run(c.profile+"_"+c.set, func(t *testing.T) {
			t.Parallel()
			env := apptest.Start(t, cluster, admin, func(cfg *config.Config) { cfg.Profile, cfg.ReplicaReads = c.profile, c.set })
			st := getSettings(t, env).Settings
			if st.ReplicaReads != c.want {
				t.Errorf("live replicaReads = %v with HMP_REPLICA_READS=%s on %s, want %v", st.ReplicaReads, c.set, c.profile, c.want)
			}
			if !slices.Contains(st.Modified, "replicaReads") {
				t.Errorf("modified = %v, want replicaReads named (%s's default differs)", st.Modified, c.profile)
			}
			if got := env.App.Replicas.Enabled(); got != c.want {
				t.Errorf("router reads from replicas = %v after start, want %v", got, c.want)
			}
			var ready struct{ Reads string }
			env.Must(200, "GET", "/readyz", "", nil).JSON(t, &ready)
			if ready.Reads != replicas.ReadsPrimaryNone {
				t.Errorf("/readyz says reads go to %q, want %q", ready.Reads, replicas.ReadsPrimaryNone)
			}
		})
	}
}
