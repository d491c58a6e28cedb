package loadtest_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/apptest"
	"hmp/internal/bus"
	"hmp/internal/config"
	"hmp/internal/loadtest"
	"hmp/internal/reports"
)

func profiles(t testing.TB, names ...string) []loadtest.ProjectionProfile {
	t.Helper()
	var out []loadtest.ProjectionProfile
	for _, name := range names {
		p, err := config.LookupProfile(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, loadtest.ProjectionProfile{Name: p.Name, Pool: p.Pool, Projector: reports.ProjectorConfig{Projector: p.Projector}})
	}
	return out
}

// TestProjection runs the scenario on a small backlog: both profiles
// project all of it exactly, and the check of exactness sees a
// difference of one cent. It checks what was measured, never how fast.
func TestProjection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{StoreDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := loadtest.ProjectionConfig{DatabaseURL: cluster.NewDatabase(t), Bus: b, Profiles: profiles(t, "baseline", "phase1"),
		Events: 3000, Properties: 40, Orgs: 4, Days: 3, Phases: loadtest.Phases{MaxSettle: -1}}
	rep, err := loadtest.Projection(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 3 || rep.Results[0].Mode != "publish" || rep.Results[0].OK != 3000 {
		t.Fatalf("results %+v", rep.Results)
	}
	for _, r := range rep.Results[1:] {
		if r.OK != 3000 || r.Failed != 0 || r.Throughput <= 0 || r.CPU == nil {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	var exact int
	for _, c := range rep.Checks {
		if strings.Contains(c.Name, "projection exact") {
			exact++
			if !c.Pass {
				t.Errorf("check %+v", c)
			}
		}
	}
	if exact != 2 || len(rep.Checks) != 4 || rep.Checks[1].Name != "phase1 ÷ baseline events/s" {
		t.Errorf("checks %+v", rep.Checks)
	}
	if rep.Durable || rep.Server["fsync"] != "off" {
		t.Errorf("the test cluster runs with fsync off; report says durable=%v", rep.Durable)
	}

	// The last profile's projection is still there: exact, until a cent
	// moves.
	if diff, err := loadtest.VerifyProjection(ctx, cfg); err != nil || len(diff) != 0 {
		t.Fatalf("verify: %v, %v", diff, err)
	}
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE monthly_cash_balances SET bank_expenses = bank_expenses + 1
		WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM monthly_cash_balances LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	diff, err := loadtest.VerifyProjection(ctx, cfg)
	if err != nil || len(diff) != 1 || !strings.Contains(diff[0], "monthly_cash_balances.bank_expenses") {
		t.Fatalf("verify after a change: %v, %v", diff, err)
	}
}

func TestProjectionNeedsAnEmptyStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{StoreDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := loadtest.ProjectionConfig{DatabaseURL: cluster.NewDatabase(t), Bus: b, Profiles: profiles(t, "phase1"),
		Events: 10, Properties: 2, Orgs: 1, Phases: loadtest.Phases{MaxSettle: -1}}
	if _, err := loadtest.Projection(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := loadtest.Projection(ctx, cfg); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("second run on the same stream: %v", err)
	}
	if errors.Is(err, loadtest.ErrInexact) {
		t.Fatal("not an exactness failure")
	}
}

// TestFreshness runs the scenario briefly against a real HMP: both ways
// of measuring see the window's writes.
func TestFreshness(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster)
	client, err := loadtest.NewClient(env.BaseURL, 32, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	rep, err := loadtest.Freshness(context.Background(), loadtest.FreshnessConfig{
		Client: client, DatabaseURL: env.App.DatabaseURL, Orgs: 2, Properties: 2, Rate: 50, Warmup: 200 * time.Millisecond,
		Duration: time.Second, ProbeRate: 10, ProbeProperties: 2, Phases: loadtest.Phases{MaxSettle: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("results %+v", rep.Results)
	}
	writes, server, e2e := rep.Results[0], rep.Results[1], rep.Results[2]
	if writes.Mode != "open" || writes.OK == 0 || writes.Failed != 0 {
		t.Errorf("writes %+v", writes)
	}
	// Every write of the window is projected once: the open loop's and
	// the probes' (give or take the few crossing the window's edges).
	if server.OK < writes.OK || server.Latency.P99 <= 0 {
		t.Errorf("server side %+v, writes %d", server, writes.OK)
	}
	if e2e.OK == 0 || e2e.Failed != 0 || e2e.Latency.P99 <= 0 {
		t.Errorf("end to end %+v", e2e)
	}
	if len(rep.Checks) != 5 {
		t.Errorf("checks %+v", rep.Checks)
	}
}
