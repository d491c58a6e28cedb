package loadtest_test

import (
	"context"
	"log/slog"
	"testing"

	"hmp/internal/bus"
	"hmp/internal/loadtest"
)

// BenchmarkProjection runs the projection scenario on a 20,000-event
// backlog over 1,000 properties, on the test cluster (fsync off: commits
// do not wait for the disk, unlike `hmp loadtest projection`), and
// reports each profile's events/s, the ratio of phase1 to baseline and
// the CPU per event of phase1. Each iteration is a whole run.
//
//	go test ./internal/loadtest -run '^$' -bench Projection -benchtime 1x
func BenchmarkProjection(b *testing.B) {
	ctx := context.Background()
	var rep *loadtest.Report
	for b.Loop() {
		func() {
			bs, err := bus.Open(ctx, bus.Config{StoreDir: b.TempDir()}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer bs.Close()
			rep, err = loadtest.Projection(ctx, loadtest.ProjectionConfig{DatabaseURL: cluster.NewDatabase(b), Bus: bs,
				Profiles: profiles(b, "baseline", "phase1"), Events: 20_000, Properties: 1_000, Orgs: 100, Phases: loadtest.Phases{MaxSettle: -1}})
			if err != nil {
				b.Fatal(err)
			}
		}()
	}
	rate := map[string]float64{}
	for _, r := range rep.Totals {
		rate[r.Mode] = r.Throughput
		if r.Mode == "projection phase1" && r.CPU != nil {
			b.ReportMetric(r.CPU.ProcessPerOp, "phase1-proc-µs/event")
			b.ReportMetric(r.CPU.PostgresPerOp, "phase1-pg-µs/event")
		}
	}
	b.ReportMetric(rate["projection baseline"], "baseline-events/s")
	b.ReportMetric(rate["projection phase1"], "phase1-events/s")
	if base := rate["projection baseline"]; base > 0 {
		b.ReportMetric(rate["projection phase1"]/base, "ratio")
	}
}
