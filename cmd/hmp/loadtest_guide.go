package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"hmp/internal/config"
	"hmp/internal/loadtest"
	"hmp/internal/reports"
	"hmp/internal/seed"
)

// guideFlags are the settings of `hmp loadtest guide`.
type guideFlags struct {
	harness  harnessFlags
	run      runFlags
	cfg      loadtest.GuideConfig
	seed     seed.Config
	profiles string
	htmlPath string
}

const guideUsage = `Usage: hmp loadtest guide [--orgs N] [--days D] [--profiles baseline,phase1,phase2,phase3] [--json F] [--html F]

The scaling guide's results table, measured in one run. Start a durable
PostgreSQL cluster, seed --orgs organizations once (or reuse --data), then
measure the machine's limits (pgbench's two-insert commit, a bare net/http
JSON endpoint) and, per profile on its own clone of the seeded database:
corrections/s (row by row or batched), the mixed Zipf load at --rate
(p50/p99 per operation, cache hit rate, freshness p99), the writes closed
loop, and the projector's backlog drain (events/s). Prints the figures,
their ratios to the first profile and the guide's claims beside them.

Flags:`

func (f *guideFlags) register(fs *flag.FlagSet) {
	f.harness.register(fs, flagData, flagBinDir)
	f.run.register(fs, "warn", "", "")
	c := &f.cfg
	fs.IntVar(&f.seed.Orgs, "orgs", 1000, "organizations seeded into the template (or reused with --data) (HMP_LOADTEST_ORGS)")
	fs.IntVar(&f.seed.Days, "days", 30, "days of seeded history (HMP_LOADTEST_DAYS)")
	fs.Float64Var(&f.seed.Density, "density", 2, "seeded revenues and expenses per property and day (HMP_LOADTEST_DENSITY)")
	fs.Uint64Var(&f.seed.Seed, "seed", 1, "random seed of the data set (HMP_LOADTEST_SEED)")
	fs.StringVar(&f.profiles, "profiles", "baseline,phase1,phase2,phase3", "profiles to measure, in order, comma separated; the first is every ratio's reference (HMP_LOADTEST_PROFILES)")
	fs.Float64Var(&c.Rate, "rate", 200, "offered rate of the mixed load, the same for every profile, requests/s (HMP_LOADTEST_RATE)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unmeasured warm-up before every load phase (HMP_LOADTEST_WARMUP)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured length of every load phase (HMP_LOADTEST_DURATION)")
	fs.IntVar(&c.Events, "events", 50_000, "projection backlog per profile (HMP_LOADTEST_EVENTS)")
	fs.IntVar(&c.Corrections, "corrections", 1000, "drifted daily rows each profile corrects (HMP_LOADTEST_CORRECTIONS)")
	fs.IntVar(&c.WriteClients, "write-clients", 32, "closed-loop clients of the writes (HMP_LOADTEST_WRITE_CLIENTS)")
	fs.IntVar(&c.HTTPClients, "http-clients", 32, "closed-loop clients of the bare net/http endpoint (HMP_LOADTEST_HTTP_CLIENTS)")
	fs.DurationVar(&c.MaxSettle, "max-settle", 5*time.Second, "longest wait before a phase for the machine to go quiet; negative: none (HMP_LOADTEST_MAX_SETTLE)")
	fs.StringVar(&f.htmlPath, "html", "", "write the report as one self-contained HTML page to this file (HMP_LOADTEST_HTML)")
}

// check validates the flags and resolves --profiles.
func (f *guideFlags) check() error {
	f.cfg.Days = f.seed.Days
	var errs []error
	if f.seed.Orgs < 1 {
		errs = append(errs, fmt.Errorf("--orgs must be at least 1, got %d", f.seed.Orgs))
	}
	ps, err := lookupProfiles("--profiles", f.profiles)
	errs = append(errs, err)
	for _, p := range ps {
		f.cfg.Profiles = append(f.cfg.Profiles, loadtest.GuideProfile{Name: p.Name, Pool: p.Pool, Projector: reports.ProjectorConfig{Projector: p.Projector},
			Corrections: p.Corrections, CacheEntries: p.Cache.Entries})
	}
	return errors.Join(append(errs, f.cfg.Validate())...)
}

// loadtestGuide is `hmp loadtest guide`: flags, the harness and its
// seeded template, and the API starter; loadtest.Guide does the rest.
func loadtestGuide(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f guideFlags
	fs := newFlagSet("hmp loadtest guide", guideUsage, stderr)
	f.register(fs)
	logger, err := f.run.parse(fs, args, stderr, f.check)
	if err != nil {
		return err
	}
	cfg := f.cfg
	if cfg.Warmup == 0 {
		cfg.Warmup = -1 // none, not the default
	}
	h, err := f.harness.start(ctx, logger)
	if err != nil {
		return err
	}
	defer h.Close()
	ds, err := seedHarness(ctx, h, f.seed, stderr)
	if err != nil {
		return err
	}
	cfg.StartAPI = func(ctx context.Context, profile, dbURL string) (string, func(), error) {
		api, err := h.StartAPI(ctx, config.Config{Profile: profile, DatabaseURL: dbURL, DataDir: filepath.Join(h.Dir, "app-"+profile)})
		if err != nil {
			return "", nil, err
		}
		return api.URL, api.Close, nil
	}
	cfg.TemplateURL, cfg.PgbenchBinDir, cfg.Dir, cfg.Logger = h.DatabaseURL, h.BinDir, h.Dir, logger
	cfg.Orgs, cfg.Days, cfg.Password = ds.Orgs, ds.Days, ds.Password
	cfg.AdminEmail, cfg.ManagerEmail = seed.AdminEmail, seed.ManagerEmail
	rep, err := loadtest.Guide(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Params = append(rep.Params, loadtest.Param{Name: "density", Value: fmt.Sprint(ds.Density)},
		loadtest.Param{Name: "seeded", Value: fmt.Sprintf("%d rows, %d MB, reused %v", ds.Rows, ds.DatabaseBytes>>20, ds.Reused)})
	if err := writeReport(rep, f.run.jsonPath, stdout); err != nil {
		return err
	}
	if f.htmlPath != "" {
		return rep.WriteHTML(f.htmlPath)
	}
	return nil
}
