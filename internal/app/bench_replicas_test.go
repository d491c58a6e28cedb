package app_test

import (
	"context"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
)

// BenchmarkReplicaReads measures report reads with one streaming replica
// (a pg_basebackup of the test cluster on the same machine) against the
// primary alone, side by side in one run, the report cache off so that
// every read reaches PostgreSQL, commits synchronous as in production: daily reports of 50 organizations of 4
// properties over the last 30 days, Zipf-chosen, a closed loop of 32
// clients for HMP_BENCH_SECONDS (default 5). Then 200 writes, each
// followed by a read presenting its consistency token: the token reads'
// latency, whose difference between the cases is what routing them costs
// (the replay wait, or the fallback to the primary). It reports reads/s,
// the replica's share of the reads, and p50/p99 of both kinds of read.
//
//	go test ./internal/app -run '^$' -bench ReplicaReads -benchtime 1x
//
// On one machine a replica competes with the primary for the same CPUs:
// figures from it say what the routing costs, not what a second machine
// adds.
func BenchmarkReplicaReads(b *testing.B) {
	dur := time.Duration(benchEnv("HMP_BENCH_SECONDS", 5)) * time.Second
	rates := map[string]float64{}
	tokenP50 := map[string]time.Duration{}
	for _, c := range []struct {
		name    string
		replica bool
	}{{"primary-alone", false}, {"one-replica", true}} {
		b.Run(c.name, func(b *testing.B) {
			opts := []func(*config.Config){syncCommit, func(cfg *config.Config) { cfg.Cache.Entries = -1 }}
			if c.replica {
				opts = append(opts, withReplica(cluster.NewReplica(b)), func(cfg *config.Config) {
					cfg.Replicas.Pool = postgres.PoolConfig{} // the default, 20 connections
				})
			}
			env := apptest.Start(b, cluster, opts...)
			ctx := context.Background()
			client, tenants := seedBench(b, env, 50, 4)
			if c.replica {
				waitHealthy(b, env)
			}
			paths := readPaths(tenants, env.App.Config.Clock(), 30)
			rate, hist := readLoop(ctx, b, client, paths, dur, 0)
			rates[c.name] = rate
			b.ReportMetric(rate, "reads/s")
			b.ReportMetric(ms(hist.Quantile(0.5)), "read-p50-ms")
			b.ReportMetric(ms(hist.Quantile(0.99)), "read-p99-ms")
			onReplica := metricValue(env, `hmp_db_reads_total{target="replica"}`)
			onPrimary := metricValue(env, `hmp_db_reads_total{target="primary"}`)
			b.ReportMetric(100*onReplica/max(onReplica+onPrimary, 1), "replica-%")

			var tokens loadtest.Histogram
			for i := range 200 {
				tn := tenants[i%len(tenants)]
				prop := tn.Properties[0]
				body := apptest.Txn{PropertyID: prop, Source: "room", AmountCents: 1000, PaymentMode: "cash",
					OccurredAt: time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)}
				w := env.Must(201, "POST", "/v1/finance/revenues", tn.AdminToken, body)
				tok := w.Header.Get("X-Consistency-Token")
				start := time.Now()
				env.Must(200, "GET", "/v1/reports/daily-report?propertyId="+prop+"&date="+time.Now().UTC().Format(time.DateOnly),
					tn.AdminToken, nil, "X-Consistency-Token", tok)
				tokens.Record(time.Since(start))
			}
			tokenP50[c.name] = tokens.Quantile(0.5)
			b.ReportMetric(ms(tokens.Quantile(0.5)), "token-read-p50-ms")
			b.ReportMetric(ms(tokens.Quantile(0.99)), "token-read-p99-ms")
		})
	}
	if rates["primary-alone"] > 0 {
		b.Logf("one replica / primary alone: %.2fx read throughput (%.0f vs %.0f reads/s); token read p50 %s vs %s",
			rates["one-replica"]/rates["primary-alone"], rates["one-replica"], rates["primary-alone"],
			tokenP50["one-replica"], tokenP50["primary-alone"])
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// waitHealthy waits until /readyz reports the replica healthy.
func waitHealthy(b *testing.B, env *apptest.Env) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var body struct{ Replicas []struct{ State string } }
		env.Must(200, "GET", "/readyz", "", nil).JSON(b, &body)
		if len(body.Replicas) == 1 && body.Replicas[0].State == "healthy" {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("replica not healthy within 30s: %+v", body)
		}
		<-time.After(20 * time.Millisecond)
	}
}
