package loadtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"hmp/internal/app"
	"hmp/internal/config"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
	"hmp/internal/ratelimit"
	"hmp/internal/reports"
	"hmp/internal/seed"
)

// TestGuide runs the guide at a tiny size (20 organizations, two
// profiles, about a second per phase) on a seeded database: every figure
// of the JSON is a positive real measurement and every ratio is computed
// from them. It checks what was measured, never how fast.
func TestGuide(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const orgs = 20
	template := cluster.NewDatabase(t)
	pool, err := postgres.Open(ctx, template, postgres.PoolConfig{MaxConns: 4, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = seed.Run(ctx, pool, seed.Config{Orgs: orgs, Days: 5, Workers: 2})
	pool.Close() // the template must be unused to be cloned
	if err != nil {
		t.Fatal(err)
	}
	var profiles []loadtest.GuideProfile
	for _, name := range []string{"baseline", "phase1"} {
		p, err := config.LookupProfile(name)
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, loadtest.GuideProfile{Name: p.Name, Pool: p.Pool, Projector: reports.ProjectorConfig{Projector: p.Projector},
			Corrections: p.Corrections, CacheEntries: p.Cache.Entries})
	}
	startAPI := func(ctx context.Context, profile, dbURL string) (string, func(), error) {
		cfg := config.Config{HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), DatabaseURL: dbURL, Profile: profile, BcryptCost: 4,
			TokenSecret: strings.Repeat("g", 32)}
		cfg.RateLimits = config.RateLimits{LoginPerEmail: ratelimit.Limit{Count: -1}, LoginPerAddr: ratelimit.Limit{Count: -1},
			SignupPerAddr: ratelimit.Limit{Count: -1}}
		a, err := app.Start(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return "", nil, err
		}
		return "http://" + a.Addr, a.Close, nil
	}
	rep, err := loadtest.Guide(ctx, loadtest.GuideConfig{
		TemplateURL: template, Profiles: profiles, StartAPI: startAPI, Orgs: orgs, Days: 5,
		Password: "seed-password", AdminEmail: seed.AdminEmail, ManagerEmail: seed.ManagerEmail,
		Dir: t.TempDir(), PgbenchBinDir: cluster.Local.BinDir(), Rate: 100, Warmup: 300 * time.Millisecond, Duration: 1500 * time.Millisecond,
		Events: 2000, Corrections: 60, WriteClients: 4, HTTPClients: 4, WriteOrgs: 2, MaxSettle: -1,
	})
	if err != nil {
		t.Fatal(err)
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Schema string `json:"schema"`
		Limits struct {
			PgbenchTps  float64 `json:"pgbenchTps"`
			BareHTTPRps float64 `json:"bareHttpRps"`
		} `json:"limits"`
		Profiles map[string]struct {
			EventsPerSecond      float64            `json:"eventsPerSecond"`
			EventsExact          bool               `json:"eventsExact"`
			CorrectionsPerSecond float64            `json:"correctionsPerSecond"`
			CorrectionMode       string             `json:"correctionMode"`
			WritesPerSecond      float64            `json:"writesPerSecond"`
			CacheEntries         int                `json:"cacheEntries"`
			CacheHitRate         float64            `json:"cacheHitRate"`
			ReadsPerSecond       float64            `json:"readsPerSecond"`
			FreshnessP99Ms       float64            `json:"freshnessP99Ms"`
			P50Ms                map[string]float64 `json:"p50Ms"`
			P99Ms                map[string]float64 `json:"p99Ms"`
		} `json:"profiles"`
		Ratios struct {
			EventCapacity         map[string]float64 `json:"eventCapacity"`
			Corrections           float64            `json:"corrections"`
			ResponseTimeReduction map[string]float64 `json:"responseTimeReduction"`
			WritesToPgbench       map[string]float64 `json:"writesToPgbench"`
		} `json:"ratios"`
		Claims []loadtest.GuideClaim `json:"claims"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("decode: %v\n%s", err, js.String())
	}
	if got.Schema != "hmp.loadtest.guide/v1" {
		t.Errorf("schema %q", got.Schema)
	}
	positive := func(name string, v float64) {
		t.Helper()
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a positive measured figure", name, v)
		}
	}
	positive("limits.pgbenchTps", got.Limits.PgbenchTps)
	positive("limits.bareHttpRps", got.Limits.BareHTTPRps)
	if len(got.Profiles) != 2 {
		t.Fatalf("profiles %v", got.Profiles)
	}
	for name, p := range got.Profiles {
		positive(name+".eventsPerSecond", p.EventsPerSecond)
		positive(name+".correctionsPerSecond", p.CorrectionsPerSecond)
		positive(name+".writesPerSecond", p.WritesPerSecond)
		positive(name+".cacheEntries", float64(p.CacheEntries))
		positive(name+".cacheHitRate", p.CacheHitRate)
		positive(name+".readsPerSecond", p.ReadsPerSecond)
		positive(name+".freshnessP99Ms", p.FreshnessP99Ms)
		if !p.EventsExact {
			t.Errorf("%s: projection not exact", name)
		}
		for _, op := range []string{"all", "reads", "writes", loadtest.OpDailyReport} {
			positive(name+".p50Ms."+op, p.P50Ms[op])
			positive(name+".p99Ms."+op, p.P99Ms[op])
		}
	}
	base, p1 := got.Profiles["baseline"], got.Profiles["phase1"]
	if base.CorrectionMode != "row" || p1.CorrectionMode != "batch" {
		t.Errorf("correction modes %q, %q", base.CorrectionMode, p1.CorrectionMode)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.01*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v from the figures", name, got, want)
		}
	}
	near("ratios.eventCapacity.baseline", got.Ratios.EventCapacity["baseline"], 1)
	near("ratios.eventCapacity.phase1", got.Ratios.EventCapacity["phase1"], p1.EventsPerSecond/base.EventsPerSecond)
	near("ratios.corrections", got.Ratios.Corrections, p1.CorrectionsPerSecond/base.CorrectionsPerSecond)
	near("ratios.responseTimeReduction.phase1", got.Ratios.ResponseTimeReduction["phase1"], 1-p1.P99Ms["all"]/base.P99Ms["all"])
	near("ratios.writesToPgbench.phase1", got.Ratios.WritesToPgbench["phase1"], p1.WritesPerSecond/got.Limits.PgbenchTps)
	if _, ok := got.Ratios.ResponseTimeReduction["baseline"]; ok {
		t.Error("the reference has a response time reduction against itself")
	}
	claims := map[string]loadtest.GuideClaim{}
	for _, c := range got.Claims {
		claims[c.Name+" "+c.Profile] = c
	}
	if c := claims["event processing capacity phase1"]; c.Claim != 25 || c.Measured != got.Ratios.EventCapacity["phase1"] || c.Met != (c.Measured >= 25) {
		t.Errorf("event capacity claim %+v", c)
	}
	if c := claims["auto-correction efficiency phase1"]; c.Claim != 100 || c.Measured != got.Ratios.Corrections {
		t.Errorf("corrections claim %+v", c)
	}
	if c := claims["response time lower (p99) phase1"]; c.Claim != 50 {
		t.Errorf("response time claim %+v (claims %+v)", c, got.Claims)
	}
	if len(got.Claims) != 3 {
		t.Errorf("claims %+v: want the three that phase1 has", got.Claims)
	}

	var table, page bytes.Buffer
	if err := rep.Print(&table); err != nil {
		t.Fatal(err)
	}
	if err := rep.RenderHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hmp loadtest guide", "pgbench two-insert commit", "baseline", "phase1", "claim 25.00×", daily} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	for _, want := range []string{"<svg", "the guide&#39;s claim", "event processing capacity", "<table>"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	t.Logf("\n%s", table.String())
}

const daily = loadtest.OpDailyReport
