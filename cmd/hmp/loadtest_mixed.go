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
	"time"

	"hmp/internal/config"
	"hmp/internal/loadtest"
	"hmp/internal/seed"
)

// mixedFlags are the settings of `hmp loadtest mixed`.
type mixedFlags struct {
	harness    harnessFlags
	run        runFlags
	cfg        loadtest.MixedConfig
	seed       seed.Config // the data set: orgs, days, density, seed, password
	compare    string
	htmlPath   string
	warmTenant int
	split      int
}

const mixedUsage = `Usage: hmp loadtest mixed --orgs N --duration D [--rate R | --clients C] [flags]

A realistic mix over many organizations, drawn with a Zipf skew: reads
(daily report, 7-day ranges, monthly, yearly, lists) and writes (revenue
and expense creates, a manager's creates and their approvals, edits,
deletes). Without --url the run starts its own durable PostgreSQL, seeds
--orgs organizations with 'hmp seed' (or reuses --data), then starts HMP in
this process with each profile of --compare in turn, runs the same workload
against it, and prints one table with the ratios. Stops by itself.

Flags:`

func (f *mixedFlags) register(fs *flag.FlagSet) {
	f.harness.register(fs, flagURL, flagData, flagBinDir, flagProfile)
	f.run.register(fs, "warn", "", "")
	c := &f.cfg
	fs.IntVar(&f.seed.Orgs, "orgs", 100, "organizations of the data set: seeded (or reused with --data) before the run, or already seeded into --url's database (HMP_LOADTEST_ORGS)")
	fs.IntVar(&f.seed.Days, "days", 30, "days of seeded history (HMP_LOADTEST_DAYS)")
	fs.Float64Var(&f.seed.Density, "density", 2, "seeded revenues and expenses per property and day (HMP_LOADTEST_DENSITY)")
	fs.Uint64Var(&f.seed.Seed, "seed", 1, "random seed of the data set and the workload (HMP_LOADTEST_SEED)")
	fs.StringVar(&f.seed.Password, "password", "seed-password", "password of the seeded users (HMP_LOADTEST_PASSWORD)")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured length of each profile's run (ramp: at most) (HMP_LOADTEST_DURATION)")
	fs.DurationVar(&c.Warmup, "warmup", 0, "unmeasured warm-up before each run (HMP_LOADTEST_WARMUP)")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: requests per second (ramp: of the first step); 0 with no --clients: 200 (HMP_LOADTEST_RATE)")
	fs.IntVar(&c.Clients, "clients", 0, "closed loop: concurrent clients, instead of --rate (HMP_LOADTEST_CLIENTS)")
	fs.StringVar(&c.Scenario, "scenario", "steady", "steady, burst (4x the rate 5 s in every 20 s), ramp (x--ramp-factor every --ramp-step until p99 passes --ramp-budget or errors pass 0.1 %), hot-tenant (half the load on one organization) or back-dated (writes dated up to --days back) (HMP_LOADTEST_SCENARIO)")
	fs.Float64Var(&c.ReadShare, "read-share", 0.8, "fraction of requests that read (HMP_LOADTEST_READ_SHARE)")
	fs.Float64Var(&c.ZipfS, "zipf", 1.1, "skew of organization popularity (> 1) (HMP_LOADTEST_ZIPF)")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", 256, "most open-loop requests in flight (HMP_LOADTEST_MAX_IN_FLIGHT)")
	fs.DurationVar(&c.RampStep, "ramp-step", 5*time.Second, "length of each ramp step (HMP_LOADTEST_RAMP_STEP)")
	fs.Float64Var(&c.RampFactor, "ramp-factor", 1.5, "rate multiplier between ramp steps (HMP_LOADTEST_RAMP_FACTOR)")
	fs.DurationVar(&c.RampBudget, "ramp-budget", 250*time.Millisecond, "p99 a ramp step must stay under (HMP_LOADTEST_RAMP_BUDGET)")
	fs.Float64Var(&c.ProbeRate, "probe-rate", 5, "freshness probes per second (write, then read until visible); negative: none (HMP_LOADTEST_PROBE_RATE)")
	fs.StringVar(&f.compare, "compare", "", "profiles to run in turn on the same data, comma separated, e.g. baseline,phase1 (HMP_LOADTEST_COMPARE)")
	fs.IntVar(&f.warmTenant, "login-first", 500, "organizations to log in to before the run (the rest on first use) (HMP_LOADTEST_LOGIN_FIRST)")
	fs.IntVar(&f.split, "split", 0, "also run each profile through a split deployment: one gateway forwarding over NATS to this many finance and as many reports instances; the table compares it with role all side by side; 0: role all only (HMP_LOADTEST_SPLIT)")
	fs.StringVar(&f.htmlPath, "html", "", "write the report as one self-contained HTML page with charts to this file (HMP_LOADTEST_HTML)")
}

func loadtestMixed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f mixedFlags
	fs := newFlagSet("hmp loadtest mixed", mixedUsage, stderr)
	f.register(fs)
	var profiles []string
	logger, err := f.run.parse(fs, args, stderr, func() (err error) {
		profiles, err = f.check()
		return err
	})
	if err != nil {
		return err
	}
	f.cfg.Logger = logger
	rep := &loadtest.MixedReport{Target: "embedded", Embedded: f.harness.url == ""}
	var results []loadtest.MixedResult
	if f.harness.url != "" {
		r, err := f.runOn(ctx, f.harness.url, "", 0, logger)
		if err != nil {
			return err
		}
		results, rep.Target = append(results, *r), f.harness.url
		rep.Notes = append(rep.Notes, "server given by --url: its profile is whatever it runs; CPU of PostgreSQL unknown unless it is local")
	} else if results, rep.Data, err = f.runEmbedded(ctx, profiles, logger, stderr); err != nil {
		return err
	} else {
		rep.Notes = append(rep.Notes, "generator, API and PostgreSQL share this machine (and it is shared with other work): compare ratios from one run, not absolute figures across runs")
		if len(profiles) > 1 {
			rep.Notes = append(rep.Notes, "profiles ran one after another on the same data set; each later profile also sees the rows the earlier ones wrote")
		}
	}
	return f.report(rep, results, stdout)
}

// report fills rep from results and the flags and writes it.
func (f *mixedFlags) report(head *loadtest.MixedReport, results []loadtest.MixedResult, stdout io.Writer) error {
	rep := loadtest.NewMixedReport(results)
	rep.Target, rep.Embedded, rep.Data, rep.Notes = head.Target, head.Embedded, head.Data, head.Notes
	rep.Params = []loadtest.Param{{Name: "orgs", Value: fmt.Sprint(f.seed.Orgs)}, {Name: "duration", Value: f.cfg.Duration.String()},
		{Name: "rate", Value: fmt.Sprint(f.cfg.Rate)}, {Name: "clients", Value: fmt.Sprint(f.cfg.Clients)},
		{Name: "readShare", Value: fmt.Sprint(f.cfg.ReadShare)}, {Name: "zipf", Value: fmt.Sprint(f.cfg.ZipfS)},
		{Name: "seed", Value: fmt.Sprint(f.seed.Seed)}, {Name: "compare", Value: f.compare}}
	if f.run.jsonPath == "-" {
		return rep.WriteJSON("-", stdout)
	}
	if err := rep.Print(stdout); err != nil {
		return err
	}
	if f.run.jsonPath != "" {
		if err := rep.WriteJSON(f.run.jsonPath, stdout); err != nil {
			return err
		}
	}
	if f.htmlPath != "" {
		return rep.WriteHTML(f.htmlPath)
	}
	return nil
}

// runEmbedded starts the harness, seeds it (or reuses --data) and runs
// the workload against role all with each profile, and with --split
// through a split deployment too.
func (f *mixedFlags) runEmbedded(ctx context.Context, profiles []string, logger *slog.Logger, stderr io.Writer) ([]loadtest.MixedResult, *loadtest.DataSet, error) {
	h, err := f.harness.start(ctx, logger)
	if err != nil {
		return nil, nil, err
	}
	defer h.Close()
	data, err := seedHarness(ctx, h, f.seed, stderr)
	if err != nil {
		return nil, nil, err
	}
	f.seed.Password = data.Password
	var results []loadtest.MixedResult
	for _, p := range profiles {
		fmt.Fprintf(stderr, "mixed: profile %s, %s scenario, %s\n", orDefault(p), f.cfg.Scenario, f.cfg.Duration)
		api, err := h.StartAPI(ctx, config.Config{Profile: p})
		if err != nil {
			return nil, nil, err
		}
		r, err := f.runOn(ctx, api.URL, p, h.Postmaster, logger)
		api.Close()
		if err != nil {
			return nil, nil, err
		}
		results = append(results, *r)
		if f.split > 0 {
			if r, err = f.runSplit(ctx, h, p, logger, stderr); err != nil {
				return nil, nil, err
			}
			results = append(results, *r)
		}
	}
	return results, data, nil
}

// seedHarness seeds h with cfg (or reuses its data folder's seed),
// showing progress on stderr.
func seedHarness(ctx context.Context, h *loadtest.Harness, cfg seed.Config, stderr io.Writer) (*loadtest.DataSet, error) {
	progress, finish := seedProgress("auto", cfg.Orgs, stderr)
	cfg.Progress = progress
	data, err := h.Seed(ctx, cfg)
	finish()
	if errors.Is(err, loadtest.ErrDataMismatch) {
		return nil, usageError{err}
	}
	return data, err
}

// runSplit runs the workload through a split deployment of profile,
// labelled "<profile> via gateway (N+N)".
func (f *mixedFlags) runSplit(ctx context.Context, h *loadtest.Harness, profile string, logger *slog.Logger, stderr io.Writer) (*loadtest.MixedResult, error) {
	fmt.Fprintf(stderr, "mixed: profile %s through a gateway to %d finance and %d reports instances\n", orDefault(profile), f.split, f.split)
	d, err := h.StartSplit(ctx, config.Config{Profile: profile}, f.split)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	r, err := f.runOn(ctx, d.URL, profile, h.Postmaster, logger)
	if err != nil {
		return nil, err
	}
	r.Profile = fmt.Sprintf("%s via gateway (%d+%d)", orDefault(profile), f.split, f.split)
	return r, nil
}

func orDefault(p string) string {
	if p == "" {
		return config.DefaultProfile
	}
	return p
}

// check validates the flags and returns the profiles to run.
func (f *mixedFlags) check() ([]string, error) {
	f.cfg.Days, f.cfg.Seed = f.seed.Days, f.seed.Seed
	errs := []error{f.cfg.Validate()}
	if f.seed.Orgs < 1 {
		errs = append(errs, fmt.Errorf("--orgs must be at least 1, got %d", f.seed.Orgs))
	}
	if f.cfg.ReadShare == 0 {
		f.cfg.ReadShare = -1 // no reads, not the default
	}
	profiles, err := f.profiles()
	errs = append(errs, err)
	url := f.harness.url
	if url != "" && f.compare != "" {
		errs = append(errs, errors.New("--compare starts the API with each profile: it cannot drive --url"))
	}
	if url != "" && f.split > 0 {
		errs = append(errs, errors.New("--split starts the deployments it compares: it cannot go with --url (point --url at a gateway instead)"))
	}
	if url != "" && f.harness.data != "" {
		errs = append(errs, errors.New("--data seeds a database this run starts: it cannot go with --url"))
	}
	return profiles, errors.Join(errs...)
}

// profiles are the profiles of --compare, or --profile alone.
func (f *mixedFlags) profiles() ([]string, error) {
	if f.compare == "" {
		if _, err := config.LookupProfile(f.harness.profile); f.harness.profile != "" && err != nil {
			return nil, fmt.Errorf("--profile: %w", err)
		}
		return []string{f.harness.profile}, nil
	}
	var errs []error
	if f.harness.profile != "" {
		errs = append(errs, errors.New("give --profile or --compare, not both"))
	}
	ps, err := lookupProfiles("--compare", f.compare)
	var profiles []string
	for _, p := range ps {
		profiles = append(profiles, p.Name)
	}
	return profiles, errors.Join(append(errs, err)...)
}

func (f *mixedFlags) runOn(ctx context.Context, base, profile string, postmaster int, logger *slog.Logger) (*loadtest.MixedResult, error) {
	client, err := loadtest.NewClient(base, f.cfg.MaxInFlight+f.cfg.Clients+16, 30*time.Second)
	if err != nil {
		return nil, usageError{err}
	}
	defer client.Close()
	tenants := loadtest.NewSeededTenants(client, f.seed.Orgs, f.seed.Password, seed.AdminEmail, seed.ManagerEmail)
	if err := tenants.Warm(ctx, f.warmTenant, 8); err != nil {
		return nil, fmt.Errorf("log in to the seeded organizations (was the database seeded with hmp seed --orgs %d?): %w", f.seed.Orgs, err)
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
	if profile == "" && f.harness.url != "" {
		r.Profile = ""
	}
	logger.Info("mixed_done", "profile", r.Profile, "ok", r.All.OK, "failed", r.All.Failed)
	return r, nil
}
