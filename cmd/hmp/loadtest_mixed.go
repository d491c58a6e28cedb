package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hmp/internal/app"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
	"hmp/internal/seed"
)

// mixedFlags are the settings of `hmp loadtest mixed`.
type mixedFlags struct {
	cfg        loadtest.MixedConfig
	orgs       int
	days       int
	density    float64
	seedSeed   uint64
	compare    string
	profile    string
	url        string
	data       string
	binDir     string
	password   string
	jsonPath   string
	htmlPath   string
	logLevel   string
	warmTenant int
	split      int
}

func loadtestMixed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp loadtest mixed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f mixedFlags
	fs.IntVar(&f.orgs, "orgs", 100, "organizations of the data set: seeded (or reused with --data) before the run, or already seeded into --url's database (HMP_LOADTEST_ORGS)")
	fs.IntVar(&f.days, "days", 30, "days of seeded history (HMP_LOADTEST_DAYS)")
	fs.Float64Var(&f.density, "density", 2, "seeded revenues and expenses per property and day (HMP_LOADTEST_DENSITY)")
	fs.Uint64Var(&f.seedSeed, "seed", 1, "random seed of the data set and the workload (HMP_LOADTEST_SEED)")
	fs.DurationVar(&f.cfg.Duration, "duration", 30*time.Second, "measured length of each profile's run (ramp: at most) (HMP_LOADTEST_DURATION)")
	fs.DurationVar(&f.cfg.Warmup, "warmup", 0, "unmeasured warm-up before each run (HMP_LOADTEST_WARMUP)")
	fs.Float64Var(&f.cfg.Rate, "rate", 0, "open loop: requests per second (ramp: of the first step); 0 with no --clients: 200 (HMP_LOADTEST_RATE)")
	fs.IntVar(&f.cfg.Clients, "clients", 0, "closed loop: concurrent clients, instead of --rate (HMP_LOADTEST_CLIENTS)")
	fs.StringVar(&f.cfg.Scenario, "scenario", "steady", "steady, burst (4x the rate 5 s in every 20 s), ramp (x--ramp-factor every --ramp-step until p99 passes --ramp-budget or errors pass 0.1 %), hot-tenant (half the load on one organization) or back-dated (writes dated up to --days back) (HMP_LOADTEST_SCENARIO)")
	fs.Float64Var(&f.cfg.ReadShare, "read-share", 0.8, "fraction of requests that read (HMP_LOADTEST_READ_SHARE)")
	fs.Float64Var(&f.cfg.ZipfS, "zipf", 1.1, "skew of organization popularity (> 1) (HMP_LOADTEST_ZIPF)")
	fs.IntVar(&f.cfg.MaxInFlight, "max-in-flight", 256, "most open-loop requests in flight (HMP_LOADTEST_MAX_IN_FLIGHT)")
	fs.DurationVar(&f.cfg.RampStep, "ramp-step", 5*time.Second, "length of each ramp step (HMP_LOADTEST_RAMP_STEP)")
	fs.Float64Var(&f.cfg.RampFactor, "ramp-factor", 1.5, "rate multiplier between ramp steps (HMP_LOADTEST_RAMP_FACTOR)")
	fs.DurationVar(&f.cfg.RampBudget, "ramp-budget", 250*time.Millisecond, "p99 a ramp step must stay under (HMP_LOADTEST_RAMP_BUDGET)")
	fs.Float64Var(&f.cfg.ProbeRate, "probe-rate", 5, "freshness probes per second (write, then read until visible); negative: none (HMP_LOADTEST_PROBE_RATE)")
	fs.StringVar(&f.compare, "compare", "", "profiles to run in turn on the same data, comma separated, e.g. baseline,phase1 (HMP_LOADTEST_COMPARE)")
	fs.StringVar(&f.profile, "profile", "", "profile of the one run without --compare; empty: the serve default (HMP_LOADTEST_PROFILE)")
	fs.StringVar(&f.url, "url", "", "base URL of a running HMP (loopback only) whose database was seeded with 'hmp seed --orgs N'; empty: start one (HMP_LOADTEST_URL)")
	fs.StringVar(&f.data, "data", "", "data folder to seed once and reuse (its embedded PostgreSQL and seed.json); empty: a temporary one, removed at the end (HMP_LOADTEST_DATA)")
	fs.StringVar(&f.binDir, "postgres-bin", "", "folder of initdb and postgres; empty searches (HMP_POSTGRES_BIN)")
	fs.StringVar(&f.password, "password", "seed-password", "password of the seeded users (HMP_LOADTEST_PASSWORD)")
	fs.IntVar(&f.warmTenant, "login-first", 500, "organizations to log in to before the run (the rest on first use) (HMP_LOADTEST_LOGIN_FIRST)")
	fs.IntVar(&f.split, "split", 0, "also run each profile through a split deployment: one gateway forwarding over NATS to this many finance and as many reports instances; the table compares it with role all side by side; 0: role all only (HMP_LOADTEST_SPLIT)")
	fs.StringVar(&f.jsonPath, "json", "", "write the report as JSON to this file, - for stdout (HMP_LOADTEST_JSON)")
	fs.StringVar(&f.htmlPath, "html", "", "write the report as one self-contained HTML page with charts to this file (HMP_LOADTEST_HTML)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level of progress and of the API this run starts (HMP_LOADTEST_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp loadtest mixed --orgs N --duration D [--rate R | --clients C] [flags]

A realistic mix over many organizations, drawn with a Zipf skew: reads
(daily report, 7-day ranges, monthly, yearly, lists) and writes (revenue
and expense creates, a manager's creates and their approvals, edits,
deletes). Without --url the run starts its own durable PostgreSQL, seeds
--orgs organizations with 'hmp seed' (or reuses --data), then starts HMP in
this process with each profile of --compare in turn, runs the same workload
against it, and prints one table with the ratios. Stops by itself.

Flags:`)
		fs.PrintDefaults()
	}
	if err := parseUsage(fs, args); err != nil {
		return err
	}
	profiles, err := f.check()
	if err != nil {
		return usageError{err}
	}
	logger, err := loadtestLogger(f.logLevel, stderr)
	if err != nil {
		return usageError{err}
	}
	f.cfg.Seed, f.cfg.Days, f.cfg.Logger = f.seedSeed, f.days, logger

	var (
		results []loadtest.MixedResult
		data    *loadtest.DataSet
		target  string
		notes   []string
	)
	if f.url != "" {
		r, err := f.runOn(ctx, f.url, "", 0, logger)
		if err != nil {
			return err
		}
		results, target = append(results, *r), f.url
		notes = append(notes, "server given by --url: its profile is whatever it runs; CPU of PostgreSQL unknown unless it is local")
	} else {
		dir := f.data
		if dir == "" {
			tmp, err := loadtestDir()
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		local, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: filepath.Join(dir, "postgres"), BinDir: f.binDir, Logger: logger})
		if err != nil {
			return fmt.Errorf("embedded postgres: %w", err)
		}
		defer local.Stop()
		if data, err = f.ensureData(ctx, dir, local.URL(), logger, stderr); err != nil {
			return err
		}
		postmaster := loadtest.PostmasterPID(ctx, local.URL())
		var secret [32]byte
		_, _ = rand.Read(secret[:])
		for _, p := range profiles {
			fmt.Fprintf(stderr, "mixed: profile %s, %s scenario, %s\n", orDefault(p), f.cfg.Scenario, f.cfg.Duration)
			cfg := app.Config{HTTPAddr: "127.0.0.1:0", DataDir: filepath.Join(dir, "app"), DatabaseURL: local.URL(), Profile: p,
				BcryptCost: 4, TokenSecret: hex.EncodeToString(secret[:])}
			cfg.RateLimits = loadtestLimits() // one client address logs in thousands of organizations
			a, err := app.Start(ctx, cfg, logger)
			if err != nil {
				return err
			}
			r, err := f.runOn(ctx, "http://"+a.Addr, p, postmaster, logger)
			a.Close()
			if err != nil {
				return err
			}
			target = "embedded"
			results = append(results, *r)
			if f.split > 0 {
				if r, err = f.runSplit(ctx, cfg, dir, p, postmaster, logger, stderr); err != nil {
					return err
				}
				results = append(results, *r)
			}
		}
		notes = append(notes, "generator, API and PostgreSQL share this machine (and it is shared with other work): compare ratios from one run, not absolute figures across runs")
		if len(profiles) > 1 {
			notes = append(notes, "profiles ran one after another on the same data set; each later profile also sees the rows the earlier ones wrote")
		}
	}
	rep := loadtest.NewMixedReport(results)
	rep.Target, rep.Embedded, rep.Data, rep.Notes = target, f.url == "", data, notes
	rep.Params = []loadtest.Param{{Name: "orgs", Value: fmt.Sprint(f.orgs)}, {Name: "duration", Value: f.cfg.Duration.String()},
		{Name: "rate", Value: fmt.Sprint(f.cfg.Rate)}, {Name: "clients", Value: fmt.Sprint(f.cfg.Clients)},
		{Name: "readShare", Value: fmt.Sprint(f.cfg.ReadShare)}, {Name: "zipf", Value: fmt.Sprint(f.cfg.ZipfS)},
		{Name: "seed", Value: fmt.Sprint(f.seedSeed)}, {Name: "compare", Value: f.compare}}
	if f.jsonPath == "-" {
		return rep.WriteJSON("-", stdout)
	}
	if err := rep.Print(stdout); err != nil {
		return err
	}
	if f.jsonPath != "" {
		if err := rep.WriteJSON(f.jsonPath, stdout); err != nil {
			return err
		}
	}
	if f.htmlPath != "" {
		if err := rep.WriteHTML(f.htmlPath); err != nil {
			return err
		}
	}
	return nil
}

func orDefault(p string) string {
	if p == "" {
		return app.DefaultProfile
	}
	return p
}

// check validates the flags and returns the profiles to run.
func (f *mixedFlags) check() ([]string, error) {
	var errs []error
	if f.orgs < 1 {
		errs = append(errs, fmt.Errorf("--orgs must be at least 1, got %d", f.orgs))
	}
	if f.cfg.Rate > 0 && f.cfg.Clients > 0 {
		errs = append(errs, errors.New("give --rate (open loop) or --clients (closed loop), not both"))
	}
	if f.cfg.Rate < 0 || f.cfg.Clients < 0 {
		errs = append(errs, errors.New("--rate and --clients must not be negative"))
	}
	if f.cfg.Duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration must be positive, got %s", f.cfg.Duration))
	}
	if f.cfg.ReadShare < 0 || f.cfg.ReadShare > 1 {
		errs = append(errs, fmt.Errorf("--read-share must be between 0 and 1, got %g", f.cfg.ReadShare))
	}
	if f.cfg.ReadShare == 0 {
		f.cfg.ReadShare = -1 // no reads, not the default
	}
	if f.days < 1 {
		errs = append(errs, fmt.Errorf("--days must be at least 1, got %d", f.days))
	}
	ok := false
	for _, s := range loadtest.Scenarios() {
		ok = ok || s == f.cfg.Scenario
	}
	if !ok {
		errs = append(errs, fmt.Errorf("--scenario must be one of %s, got %q", strings.Join(loadtest.Scenarios(), ", "), f.cfg.Scenario))
	}
	if f.cfg.Scenario == loadtest.ScenarioRamp && f.cfg.Clients > 0 {
		errs = append(errs, errors.New("--scenario ramp raises a rate: use --rate, not --clients"))
	}
	profiles := []string{f.profile}
	if f.compare != "" {
		if f.profile != "" {
			errs = append(errs, errors.New("give --profile or --compare, not both"))
		}
		profiles = nil
		for _, p := range strings.Split(f.compare, ",") {
			p = strings.TrimSpace(p)
			if _, err := app.LookupProfile(p); err != nil || p == "" {
				errs = append(errs, fmt.Errorf("--compare: unknown profile %q", p))
			}
			profiles = append(profiles, p)
		}
		if f.url != "" {
			errs = append(errs, errors.New("--compare starts the API with each profile: it cannot drive --url"))
		}
	} else if f.profile != "" {
		if _, err := app.LookupProfile(f.profile); err != nil {
			errs = append(errs, fmt.Errorf("--profile: %w", err))
		}
	}
	if f.url != "" && f.split > 0 {
		errs = append(errs, errors.New("--split starts the deployments it compares: it cannot go with --url (point --url at a gateway instead)"))
	}
	if f.url != "" && f.data != "" {
		errs = append(errs, errors.New("--data seeds a database this run starts: it cannot go with --url"))
	}
	return profiles, errors.Join(errs...)
}

// ensureData seeds the data folder's database, or reuses what an earlier
// run (or hmp seed --data-dir) seeded there.
func (f *mixedFlags) ensureData(ctx context.Context, dir, url string, logger *slog.Logger, stderr io.Writer) (*loadtest.DataSet, error) {
	if rec, ok, err := readSeedRecord(dir); err != nil {
		return nil, err
	} else if ok {
		if rec.Orgs != f.orgs {
			return nil, usageError{fmt.Errorf("--data %s holds %d seeded organizations, not --orgs %d", dir, rec.Orgs, f.orgs)}
		}
		f.password = rec.Password
		return &loadtest.DataSet{Orgs: rec.Orgs, Days: rec.Days, Density: rec.Density, Rows: rec.TotalRows, SeedSeconds: rec.Elapsed.Seconds(),
			RowsPerSecond: rec.RowsPerSecond, DatabaseBytes: rec.DatabaseBytes, Reused: true}, nil
	}
	if err := app.Migrate(ctx, url, logger); err != nil {
		return nil, err
	}
	cfg := seed.Config{Orgs: f.orgs, Days: f.days, Density: f.density, Seed: f.seedSeed, Password: f.password}
	pool, err := postgres.Open(ctx, url, postgres.PoolConfig{MaxConns: int32(cfg.WithDefaults().Workers + 2), MinConns: 1})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	progress, finish := seedProgress("auto", f.orgs, stderr)
	cfg.Progress = progress
	res, err := seed.Run(ctx, pool, cfg)
	finish()
	if err != nil {
		return nil, err
	}
	if err := writeSeedRecord(dir, res); err != nil {
		return nil, err
	}
	return &loadtest.DataSet{Orgs: res.Orgs, Days: res.Days, Density: res.Density, Rows: res.TotalRows, SeedSeconds: res.Elapsed.Seconds(),
		RowsPerSecond: res.RowsPerSecond, DatabaseBytes: res.DatabaseBytes}, nil
}

// runOn runs the workload once against the API at base.
func (f *mixedFlags) runOn(ctx context.Context, base, profile string, postmaster int, logger *slog.Logger) (*loadtest.MixedResult, error) {
	client, err := loadtest.NewClient(base, f.cfg.MaxInFlight+f.cfg.Clients+16, 30*time.Second)
	if err != nil {
		return nil, usageError{err}
	}
	defer client.Close()
	tenants := loadtest.NewSeededTenants(client, f.orgs, f.password, seed.AdminEmail, seed.ManagerEmail)
	if err := tenants.Warm(ctx, f.warmTenant, 8); err != nil {
		return nil, fmt.Errorf("log in to the seeded organizations (was the database seeded with hmp seed --orgs %d?): %w", f.orgs, err)
	}
	cfg := f.cfg
	cfg.Client, cfg.Tenants, cfg.Postmaster = client, tenants, postmaster
	if cfg.ProbeRate > 0 {
		var suffix [4]byte
		_, _ = rand.Read(suffix[:])
		name := "probe-" + hex.EncodeToString(suffix[:])
		t, err := client.Signup(ctx, "Load probe "+name, name+"@probe.hmp.test")
		if err != nil {
			return nil, fmt.Errorf("probe organization: %w", err)
		}
		pid, err := client.CreateProperty(ctx, t.AdminToken, "probe")
		if err != nil {
			return nil, fmt.Errorf("probe property: %w", err)
		}
		t.Properties = []string{pid}
		cfg.ProbeTenant = &t
	}
	r, err := loadtest.Mixed(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r.Profile = orDefault(profile)
	if profile == "" && f.url != "" {
		r.Profile = ""
	}
	logger.Info("mixed_done", "profile", r.Profile, "ok", r.All.OK, "failed", r.All.Failed)
	return r, nil
}
