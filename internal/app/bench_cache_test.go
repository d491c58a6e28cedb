package app_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/cache"
	"hmp/internal/config"
	"hmp/internal/loadtest"
	"hmp/internal/measure"
)

// BenchmarkDailyReportCache reads daily reports over HTTP, the cache on
// (phase1: 10,000 entries) and off (HMP_CACHE_ENTRIES=-1), side by side in
// one run, on Zipf-distributed (s = 1.1) tenants, properties and dates: 50
// organizations of 4 properties, the last 30 days. Each case runs a closed
// loop for HMP_BENCH_SECONDS (default 5) with 16 clients per CPU and
// reports reads/s and the hit rate; the cached case then runs open loop at
// half its own closed-loop rate and reports the p99 latency there. The
// manager cases read the same way as each organization's MANAGER
// (assigned to its 4 properties), with the access check's assignment cache
// on (scope, the default) and off (noscope: one assignment query a read).
//
//	go test ./internal/app -run '^$' -bench DailyReportCache -benchtime 1x
func BenchmarkDailyReportCache(b *testing.B) {
	dur := time.Duration(benchEnv("HMP_BENCH_SECONDS", 5)) * time.Second
	rates := map[string]float64{}
	for _, c := range []struct {
		name     string
		entries  int
		manager  bool
		maxStale time.Duration
	}{{"cached", 0, false, 0}, {"uncached", -1, false, 0}, {"cached-manager-scope", 0, true, 0}, {"cached-manager-noscope", 0, true, -1}} {
		b.Run(c.name, func(b *testing.B) {
			env := apptest.Start(b, cluster, func(cfg *config.Config) { cfg.Cache.Entries, cfg.ScopeMaxStale = c.entries, c.maxStale })
			ctx := context.Background()
			client, tenants := seedBench(b, env, 50, 4)
			if c.manager {
				for i, t := range tenants {
					// The reads carry the MANAGER's token instead.
					_, tenants[i].AdminToken = env.Manager(t.AdminToken, fmt.Sprintf("mgr-%d-%s@bench.test", i, t.OrgID), t.Properties...)
				}
			}
			paths := readPaths(tenants, env.App.Config.Clock(), 30)
			rate, hist := readLoop(ctx, b, client, paths, dur, 0)
			b.ReportMetric(rate, "reads/s")
			b.ReportMetric(float64(hist.Quantile(0.99).Microseconds())/1e3, "p99-ms")
			rates[c.name] = rate
			if c.entries >= 0 {
				hits, misses := cacheCounts(b, env)
				b.ReportMetric(100*hits/max(hits+misses, 1), "hit-%")
				_, paced := readLoop(ctx, b, client, paths, dur, rate/2)
				b.ReportMetric(float64(paced.Quantile(0.99).Microseconds())/1e3, "p99-half-rate-ms")
				b.ReportMetric(float64(paced.Quantile(0.5).Microseconds())/1e3, "p50-half-rate-ms")
			}
		})
	}
	if rates["uncached"] > 0 {
		b.Logf("cached/uncached throughput: %.1fx (%.0f vs %.0f reads/s)", rates["cached"]/rates["uncached"], rates["cached"], rates["uncached"])
	}
}

// readPath is one daily-report request.
type readPath struct{ path, token string }

// readPaths lists the daily-report reads of every property over the last
// days days, most popular first (the Zipf rank): tenants, then properties,
// then recent dates first.
func readPaths(tenants []loadtest.Tenant, now time.Time, days int) []readPath {
	var out []readPath
	for d := range days {
		date := now.AddDate(0, 0, -d).Format(time.DateOnly)
		for _, t := range tenants {
			for _, p := range t.Properties {
				out = append(out, readPath{"/v1/reports/daily-report?propertyId=" + p + "&date=" + date, t.AdminToken})
			}
		}
	}
	return out
}

// readLoop reads Zipf-chosen paths for dur: as fast as clientsPerCPU
// clients per CPU can (rate 0), or paced at rate reads/s in total. It
// returns the reads per second achieved and their latencies.
func readLoop(ctx context.Context, b *testing.B, client *loadtest.Client, paths []readPath, dur time.Duration, rate float64) (float64, *loadtest.Histogram) {
	workers := clientsPerCPU * 2
	var (
		n     atomic.Int64
		mu    sync.Mutex
		total loadtest.Histogram
		wg    sync.WaitGroup
	)
	stop := time.Now().Add(dur)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w) + 1))
			zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(paths)-1))
			var h loadtest.Histogram
			var interval time.Duration
			next := time.Now()
			if rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(workers) / rate)
				next = next.Add(time.Duration(rng.Int63n(int64(interval))))
			}
			for time.Now().Before(stop) {
				sched := time.Now()
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					sched = next // open loop: latency counts from the scheduled start
					next = next.Add(interval)
				}
				p := paths[zipf.Uint64()]
				status, err := client.Send(ctx, loadtest.Request{Method: http.MethodGet, Path: p.path, Token: p.token})
				if err != nil || status != http.StatusOK {
					b.Errorf("read %s: %d %v", p.path, status, err)
					return
				}
				h.Record(time.Since(sched))
				n.Add(1)
			}
			mu.Lock()
			total.Merge(&h)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), &total
}

// cacheCounts reads the in-process tier's hits and misses (both TTL
// classes) from /metrics.
func cacheCounts(b *testing.B, env *apptest.Env) (hits, misses float64) {
	r := env.Do("GET", "/metrics", "", nil)
	m, err := measure.Parse(bytes.NewReader(r.Body))
	if err != nil {
		b.Fatalf("GET /metrics: %v", err)
	}
	hits, _ = m.Sum("hmp_cache_hits_total", `tier="memory"`)
	misses, _ = m.Sum("hmp_cache_misses_total", `tier="memory"`)
	return hits, misses
}

// BenchmarkWriteInvalidation is BenchmarkCreateRevenue with the cache's
// invalidation on (phase1: async, announced on the bus and applied) and
// off (no cache), side by side in one run:
//
//	go test ./internal/app -run '^$' -bench WriteInvalidation -benchtime 10s
func BenchmarkWriteInvalidation(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  cache.Config
	}{{"invalidation-async", cache.Config{Invalidation: cache.ModeAsync}}, {"invalidation-sync", cache.Config{Invalidation: cache.ModeSync}}, {"off", cache.Config{Entries: -1}}} {
		b.Run(c.name, func(b *testing.B) {
			benchmarkCreateRevenue(b, apptest.Start(b, cluster, func(cfg *config.Config) { cfg.Cache = c.cfg }))
		})
	}
}
