package app_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
)

// BenchmarkCreateRevenue measures POST /v1/finance/revenues as an ADMIN
// over real HTTP on loopback, many clients at once (b.RunParallel), with
// the whole app running as `hmp serve` runs it. It reports req/s.
//
//	go test ./internal/app -run '^$' -bench CreateRevenue -benchtime 10s
//
// Two cases, because what a commit costs decides the figure:
//
//   - ephemeral: the test package's cluster, which runs with fsync=off and
//     synchronous_commit=off. Commits do not wait for the disk: this
//     measures the CPU cost of the path, not durable throughput.
//   - durable: a cluster of its own with the embedded default's settings
//     (fsync on, synchronous_commit on): every request waits for its
//     commit to reach disk, as in production.
//
// The generator, the API and PostgreSQL share the machine's CPUs; `hmp
// loadtest writes` runs the same requests with a pgbench baseline, open
// loop latency percentiles and a CPU breakdown.
func BenchmarkCreateRevenue(b *testing.B) {
	b.Run("ephemeral", func(b *testing.B) {
		benchmarkCreateRevenue(b, apptest.Start(b, cluster))
	})
	b.Run("durable", func(b *testing.B) {
		url := durableCluster(b)
		benchmarkCreateRevenue(b, apptest.Start(b, cluster, func(c *config.Config) { c.DatabaseURL = url }))
	})
}

// clientsPerCPU times GOMAXPROCS is the number of concurrent clients.
const clientsPerCPU = 16

// seedBench signs up orgs organizations of properties properties each on
// env and returns them with a client sized for clientsPerCPU clients.
func seedBench(b *testing.B, env *apptest.Env, orgs, properties int) (*loadtest.Client, []loadtest.Tenant) {
	b.Helper()
	client, err := loadtest.NewClient(env.BaseURL, clientsPerCPU*8, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(client.Close)
	tenants, err := loadtest.Seed(context.Background(), client, loadtest.RunID(), orgs, properties, 4)
	if err != nil {
		b.Fatal(err)
	}
	return client, tenants
}

func benchmarkCreateRevenue(b *testing.B, env *apptest.Env) {
	ctx := context.Background()
	client, tenants := seedBench(b, env, 10, 5)
	op := (&loadtest.RevenueCreates{Client: client, Tenants: tenants}).Op()
	var workers atomic.Int64
	b.SetParallelism(clientsPerCPU)
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := loadtest.NewWorker(int(workers.Add(1)), 1)
		for pb.Next() {
			status, err := op(ctx, w)
			if err != nil || status != http.StatusCreated {
				b.Errorf("create revenue: status %d, %v", status, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	// CPU of this process (generator, API and its event pipeline) per
	// request: steadier than req/s on a shared machine.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
}

// processCPU is the user and system CPU this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// durableCluster starts a private cluster with fsync on for the benchmark
// and returns its URL; it stops at cleanup.
func durableCluster(b *testing.B) string {
	b.Helper()
	dir, err := os.MkdirTemp("", "hmp-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	// The server runs as the postgres user when the tests run as root.
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	local, err := postgres.StartLocal(context.Background(), postgres.LocalConfig{Dir: filepath.Join(dir, "pg")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = local.Stop() })
	return local.URL()
}
