package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hmp/internal/app"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
	"hmp/internal/seed"
)

// loadtestGuide is `hmp loadtest guide`: flags, the embedded cluster and
// its seeded template, and the API starter; loadtest.Guide does the rest.
func loadtestGuide(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp loadtest guide", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                loadtest.GuideConfig
		data               mixedFlags // its seeding (ensureData)
		profiles, logLevel string
		jsonPath, htmlPath string
	)
	fs.IntVar(&data.orgs, "orgs", 1000, "organizations seeded into the template (or reused with --data) (HMP_LOADTEST_ORGS)")
	fs.IntVar(&data.days, "days", 30, "days of seeded history (HMP_LOADTEST_DAYS)")
	fs.Float64Var(&data.density, "density", 2, "seeded revenues and expenses per property and day (HMP_LOADTEST_DENSITY)")
	fs.Uint64Var(&data.seedSeed, "seed", 1, "random seed of the data set (HMP_LOADTEST_SEED)")
	fs.StringVar(&data.data, "data", "", "data folder to seed once and reuse (its embedded PostgreSQL and seed.json); empty: a temporary one (HMP_LOADTEST_DATA)")
	fs.StringVar(&data.binDir, "postgres-bin", "", "folder of initdb, postgres and pgbench; empty searches (HMP_POSTGRES_BIN)")
	fs.StringVar(&profiles, "profiles", "baseline,phase1,phase2,phase3", "profiles to measure, in order, comma separated; the first is every ratio's reference (HMP_LOADTEST_PROFILES)")
	fs.Float64Var(&cfg.Rate, "rate", 200, "offered rate of the mixed load, the same for every profile, requests/s (HMP_LOADTEST_RATE)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured warm-up before every load phase (HMP_LOADTEST_WARMUP)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured length of every load phase (HMP_LOADTEST_DURATION)")
	fs.IntVar(&cfg.Events, "events", 50_000, "projection backlog per profile (HMP_LOADTEST_EVENTS)")
	fs.IntVar(&cfg.Corrections, "corrections", 1000, "drifted daily rows each profile corrects (HMP_LOADTEST_CORRECTIONS)")
	fs.IntVar(&cfg.WriteClients, "write-clients", 32, "closed-loop clients of the writes (HMP_LOADTEST_WRITE_CLIENTS)")
	fs.IntVar(&cfg.HTTPClients, "http-clients", 32, "closed-loop clients of the bare net/http endpoint (HMP_LOADTEST_HTTP_CLIENTS)")
	fs.DurationVar(&cfg.MaxSettle, "max-settle", 5*time.Second, "longest wait before a phase for the machine to go quiet; negative: none (HMP_LOADTEST_MAX_SETTLE)")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file; - for stdout instead of the table (HMP_LOADTEST_JSON)")
	fs.StringVar(&htmlPath, "html", "", "write the report as one self-contained HTML page to this file (HMP_LOADTEST_HTML)")
	fs.StringVar(&logLevel, "log-level", "warn", "log level of progress and of the APIs this run starts (HMP_LOADTEST_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp loadtest guide [--orgs N] [--days D] [--profiles baseline,phase1,phase2,phase3] [--json F] [--html F]

The scaling guide's results table, measured in one run. Start a durable
PostgreSQL cluster, seed --orgs organizations once (or reuse --data), then
measure the machine's limits (pgbench's two-insert commit, a bare net/http
JSON endpoint) and, per profile on its own clone of the seeded database:
corrections/s (row by row or batched), the mixed Zipf load at --rate
(p50/p99 per operation, cache hit rate, freshness p99), the writes closed
loop, and the projector's backlog drain (events/s). Prints the figures,
their ratios to the first profile and the guide's claims beside them.

Flags:`)
		fs.PrintDefaults()
	}
	if err := parseUsage(fs, args); err != nil {
		return err
	}
	logger, err := loadtestLogger(logLevel, stderr)
	if err != nil {
		return usageError{err}
	}
	if data.orgs < 1 || data.days < 1 || cfg.Duration <= 0 || cfg.Rate <= 0 {
		return usageError{errors.New("--orgs, --days, --duration and --rate must be positive")}
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = -1 // none, not the default
	}
	for _, name := range strings.Split(profiles, ",") {
		p, err := app.LookupProfile(strings.TrimSpace(name))
		if err != nil || strings.TrimSpace(name) == "" {
			return usageError{fmt.Errorf("--profiles: unknown profile %q", name)}
		}
		cfg.Profiles = append(cfg.Profiles, loadtest.GuideProfile{Name: p.Name, Pool: p.Pool, Projector: p.Projector,
			Corrections: p.Corrections, CacheEntries: p.Cache.Entries})
	}
	data.password = "seed-password"

	dir, err := loadtestDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dataDir := data.data
	if dataDir == "" {
		dataDir = dir
	} else if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	local, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: filepath.Join(dataDir, "postgres"), BinDir: data.binDir, Logger: logger})
	if err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	defer local.Stop()
	ds, err := data.ensureData(ctx, dataDir, local.URL(), logger, stderr)
	if err != nil {
		return err
	}
	var secret [32]byte
	_, _ = rand.Read(secret[:])
	cfg.StartAPI = func(ctx context.Context, profile, dbURL string) (string, func(), error) {
		ac := app.Config{HTTPAddr: "127.0.0.1:0", DataDir: filepath.Join(dir, "app-"+profile), DatabaseURL: dbURL, Profile: profile,
			BcryptCost: 4, TokenSecret: hex.EncodeToString(secret[:]), RateLimits: loadtestLimits()}
		a, err := app.Start(ctx, ac, logger)
		if err != nil {
			return "", nil, err
		}
		return "http://" + a.Addr, a.Close, nil
	}
	cfg.TemplateURL, cfg.PgbenchBinDir, cfg.Dir, cfg.Logger = local.URL(), local.BinDir(), dir, logger
	cfg.Orgs, cfg.Days, cfg.Password = ds.Orgs, ds.Days, data.password
	cfg.AdminEmail, cfg.ManagerEmail = seed.AdminEmail, seed.ManagerEmail

	rep, err := loadtest.Guide(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Params = append(rep.Params, loadtest.Param{Name: "density", Value: fmt.Sprint(ds.Density)},
		loadtest.Param{Name: "seeded", Value: fmt.Sprintf("%d rows, %d MB, reused %v", ds.Rows, ds.DatabaseBytes>>20, ds.Reused)})
	if err := writeReport(rep, jsonPath, stdout); err != nil {
		return err
	}
	if htmlPath != "" {
		return rep.WriteHTML(htmlPath)
	}
	return nil
}
