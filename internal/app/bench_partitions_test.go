package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
	"hmp/internal/ratelimit"
	"hmp/internal/seed"
	"hmp/internal/tools"
)

// BenchmarkPartitionLayouts measures revenue creates/s against the same
// seeded data set laid out unpartitioned, in 16 and in 64 hash partitions,
// in one run: one durable cluster holds the three databases, each served
// by its own HMP in this process, and the closed-loop rounds alternate
// between them (the order rotating per round), so a neighbour's build on
// the shared machine lands on every layout alike. It reports each
// layout's creates/s and its ratio to unpartitioned, and logs the top
// statements of each database by pg_stat_statements (execution and
// planning time per create).
//
//	HMP_BENCH_ORGS=10000 go test ./internal/app -run '^$' -bench PartitionLayouts -benchtime 1x -timeout 30m
//
// HMP_BENCH_ORGS (10000), HMP_BENCH_ROUNDS (8), HMP_BENCH_SECONDS (5 per
// round and layout), HMP_BENCH_CLIENTS (32), HMP_BENCH_WRITE_ORGS (500:
// organizations the creates go to, logged in up front), HMP_BENCH_MIXED
// (non-empty: each round also runs the mixed writes of `hmp loadtest
// mixed`, Zipf over the organizations). On a shared machine a round's
// rate swings by half: the per-round ratios' median is the figure to read.
func BenchmarkPartitionLayouts(b *testing.B) {
	ctx := context.Background()
	orgs := benchEnv("HMP_BENCH_ORGS", 10000)
	rounds := benchEnv("HMP_BENCH_ROUNDS", 8)
	secs := benchEnv("HMP_BENCH_SECONDS", 5)
	mixed := os.Getenv("HMP_BENCH_MIXED") != ""
	clients := benchEnv("HMP_BENCH_CLIENTS", 32)
	writeOrgs := min(benchEnv("HMP_BENCH_WRITE_ORGS", 500), orgs)

	// HMP_BENCH_DIR keeps the cluster and its seeded databases for the
	// next run (which then only migrates them): seeding takes minutes.
	dir := os.Getenv("HMP_BENCH_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "hmp-bench-parts-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	local, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: filepath.Join(dir, "pg"),
		Settings: map[string]string{"pg_stat_statements.track_planning": "on"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = local.Stop() })

	type layout struct {
		name  string
		parts int // 0: unpartitioned
		url   string
		op    loadtest.Op
		st    *loadtest.SeededTenants
		ok    uint64
		secs  float64
		// CPU seconds of PostgreSQL and of this process over the rounds.
		pgCPU, procCPU float64
		// the mixed writes (creates, reviews, edits, deletes)
		wok   uint64
		wsecs float64
		stmts map[int64]stmtStat // pg_stat_statements over the creates
		// per round: creates/s and PostgreSQL µs per create
		rates, pgUs []float64
	}
	layouts := []*layout{{name: "unpartitioned"}, {name: "p16", parts: 16}, {name: "p64", parts: 64}}
	logger := slog.New(slog.DiscardHandler)
	for _, l := range layouts {
		conn, err := pgx.Connect(ctx, local.DatabaseURL("postgres"))
		if err != nil {
			b.Fatal(err)
		}
		var exists bool
		err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", l.name).Scan(&exists)
		if err == nil && !exists {
			_, err = conn.Exec(ctx, "CREATE DATABASE "+l.name)
		}
		conn.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
		l.url = local.DatabaseURL(l.name)
		if err := tools.MigrateLayout(ctx, l.url, logger, l.parts); err != nil {
			b.Fatalf("migrate %s: %v", l.name, err)
		}
		if !exists {
			pool, err := postgres.Open(ctx, l.url, postgres.PoolConfig{MaxConns: 8, MinConns: 1})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			// The same seed, sizes and clock give the same rows in each layout.
			_, err = seed.Run(ctx, pool, seed.Config{Orgs: orgs, Days: 7, Density: 2, Seed: 1})
			if err == nil {
				_, err = pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
			}
			pool.Close()
			if err != nil {
				b.Fatalf("seed %s: %v", l.name, err)
			}
			b.Logf("%s: seeded %d organizations in %s", l.name, orgs, time.Since(start).Round(time.Second))
		}
		parts := l.parts
		if parts == 0 {
			parts = -1
		}
		env := apptest.Start(b, cluster, func(c *config.Config) {
			c.DatabaseURL, c.Partitions = l.url, parts
			// One client address logs in hundreds of organizations.
			c.RateLimits = config.RateLimits{LoginPerEmail: ratelimit.Limit{Count: -1}, LoginPerAddr: ratelimit.Limit{Count: -1}}
		})
		client, err := loadtest.NewClient(env.BaseURL, clients*2, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(client.Close)
		st := loadtest.NewSeededTenants(client, orgs, "seed-password", seed.AdminEmail, seed.ManagerEmail)
		// Every layout writes to the same organizations, spread over the
		// data set (i * orgs / writeOrgs).
		tenants := make([]loadtest.Tenant, 0, writeOrgs)
		for k := range writeOrgs {
			t, err := st.Get(ctx, k*orgs/writeOrgs)
			if err != nil {
				b.Fatalf("%s: %v", l.name, err)
			}
			tenants = append(tenants, loadtest.Tenant{AdminToken: t.AdminToken, Properties: t.Properties})
		}
		if err := st.Warm(ctx, writeOrgs, 4); err != nil {
			b.Fatalf("%s: %v", l.name, err)
		}
		l.st = st
		l.op = (&loadtest.RevenueCreates{Client: client, Tenants: tenants}).Op()
	}
	postmaster := loadtest.PostmasterPID(ctx, local.URL())
	b.ResetTimer()
	for r := range rounds {
		for k := range layouts {
			l := layouts[(r+k)%len(layouts)]
			before, err := statements(ctx, l.url)
			if err != nil {
				b.Fatal(err)
			}
			res, err := loadtest.ClosedLoop{Clients: clients, Warmup: time.Second, Duration: time.Duration(secs) * time.Second,
				Want: http.StatusCreated, Seed: uint64(r + 1), Postmaster: postmaster}.Run(ctx, l.op)
			if err != nil {
				b.Fatal(err)
			}
			if res.Failed > 0 {
				b.Errorf("%s: %d creates failed: %s", l.name, res.Failed, res.FirstError)
			}
			after, err := statements(ctx, l.url)
			if err != nil {
				b.Fatal(err)
			}
			if l.stmts == nil {
				l.stmts = map[int64]stmtStat{}
			}
			addDelta(l.stmts, before, after)
			l.ok += res.OK
			l.rates = append(l.rates, res.Throughput)
			l.secs += res.Elapsed.Seconds()
			pgUs, procUs := 0.0, 0.0
			if res.CPU != nil {
				pgUs, procUs = res.CPU.PostgresPerOp, res.CPU.ProcessPerOp
				l.pgUs = append(l.pgUs, pgUs)
				l.pgCPU += pgUs * float64(res.OK) / 1e6
				l.procCPU += procUs * float64(res.OK) / 1e6
			}
			b.Logf("round %d %-13s creates %7.0f/s p99 %-14s PostgreSQL %4.0f µs/create, process %4.0f µs/create",
				r+1, l.name, res.Throughput, res.Latency.P99, pgUs, procUs)
			if !mixed {
				continue
			}
			// The mixed writes of `hmp loadtest mixed` (no reads), Zipf
			// over the organizations.
			m, err := loadtest.Mixed(ctx, loadtest.MixedConfig{Client: l.st.Client, Tenants: l.st, Clients: clients,
				Duration: time.Duration(secs) * time.Second, ReadShare: -1, ProbeRate: -1, DrainTimeout: 10 * time.Second,
				Seed: uint64(r + 1), Days: 7, Logger: logger})
			if err != nil {
				b.Fatal(err)
			}
			l.wok += m.Writes.OK
			l.wsecs += m.DurationMs / 1e3
			b.Logf("round %d %-13s mixed writes %7.0f/s p99 %.0f ms (%d failed: %s)", r+1, l.name, m.Writes.Throughput, m.Writes.P99Ms, m.Writes.Failed, m.Writes.FirstError)
		}
	}
	b.StopTimer()
	base := float64(layouts[0].ok) / layouts[0].secs
	wbase := float64(layouts[0].wok) / max(layouts[0].wsecs, 1e-9)
	for _, l := range layouts[1:] {
		ratios := make([]float64, len(l.rates))
		cpu := make([]float64, 0, len(l.pgUs))
		for i := range l.rates {
			ratios[i] = l.rates[i] / layouts[0].rates[i]
			if i < len(l.pgUs) && i < len(layouts[0].pgUs) && layouts[0].pgUs[i] > 0 {
				cpu = append(cpu, l.pgUs[i]/layouts[0].pgUs[i])
			}
		}
		b.ReportMetric(median(ratios), l.name+"/unpartitioned-median")
		b.Logf("%-13s per-round creates/s ratio to unpartitioned: median %.3f of %.3v; PostgreSQL CPU per create ratio: median %.3f",
			l.name, median(ratios), ratios, median(cpu))
	}
	for _, l := range layouts {
		rate := float64(l.ok) / l.secs
		wrate := float64(l.wok) / max(l.wsecs, 1e-9)
		b.ReportMetric(rate, l.name+"-creates/s")
		if l.parts > 0 {
			b.ReportMetric(rate/base, l.name+"/unpartitioned")
		}
		n := float64(max(l.ok, 1))
		b.Logf("%-13s creates %7.0f/s %.3fx unpartitioned; PostgreSQL %4.0f µs/create, process %4.0f µs/create",
			l.name, rate, rate/base, l.pgCPU*1e6/n, l.procCPU*1e6/n)
		if mixed {
			b.Logf("%-13s mixed writes %7.0f/s %.3fx unpartitioned", l.name, wrate, wrate/wbase)
		}
	}
	for _, l := range layouts {
		top := topStatements(l.stmts, l.ok)
		b.Logf("%s: statements by time per create (exec+plan µs, plan µs, calls per create):\n%s", l.name, top)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// stmtStat is a statement's pg_stat_statements counters.
type stmtStat struct {
	total, plan float64 // ms
	calls       int64
	query       string
}

// statements reads the counters of url's database, by queryid.
func statements(ctx context.Context, url string) (map[int64]stmtStat, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT queryid, total_exec_time + total_plan_time, total_plan_time, calls, query
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]stmtStat{}
	for rows.Next() {
		var id int64
		var st stmtStat
		if err := rows.Scan(&id, &st.total, &st.plan, &st.calls, &st.query); err != nil {
			return nil, err
		}
		out[id] = st
	}
	return out, rows.Err()
}

// addDelta adds after - before to sum.
func addDelta(sum, before, after map[int64]stmtStat) {
	for id, a := range after {
		b := before[id]
		d := sum[id]
		d.total += a.total - b.total
		d.plan += a.plan - b.plan
		d.calls += a.calls - b.calls
		d.query = a.query
		sum[id] = d
	}
}

// topStatements lists the statements of sum that took the most server
// time, per create.
func topStatements(sum map[int64]stmtStat, creates uint64) string {
	all := make([]stmtStat, 0, len(sum))
	for _, st := range sum {
		all = append(all, st)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].total > all[j].total })
	var sb strings.Builder
	n := float64(max(creates, 1))
	var total, plan float64
	for _, st := range all {
		total += st.total
		plan += st.plan
	}
	fmt.Fprintf(&sb, "  %7.1f %6.1f        all statements\n", total*1e3/n, plan*1e3/n)
	for _, st := range all[:min(len(all), 20)] {
		q := strings.Join(strings.Fields(st.query), " ")
		if len(q) > 150 {
			q = q[:150]
		}
		fmt.Fprintf(&sb, "  %7.1f %6.1f %5.2f  %s\n", st.total*1e3/n, st.plan*1e3/n, float64(st.calls)/n, q)
	}
	return sb.String()
}
