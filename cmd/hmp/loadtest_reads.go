package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"hmp/internal/config"
	"hmp/internal/loadtest"
)

// readsFlags are the settings of `hmp loadtest reads`.
type readsFlags struct {
	harness             harnessFlags
	run                 runFlags
	cfg                 loadtest.ReadsConfig
	orgs, props, cached int
}

const readsUsage = `Usage: hmp loadtest reads [flags]

Daily-report reads over Zipf-chosen tenants, properties and dates, with a
trickle of revenue creates beside them, against an API started in this
process with its report cache, then against one with HMP_CACHE_ENTRIES=-1,
on the same data. Prints reads/s of each and their ratio, p50/p99, the hit
rate overall and by TTL class (active, historical) and the invalidation
lag p99 (projector commit to applied on the instance).

Flags:`

func (f *readsFlags) register(fs *flag.FlagSet) {
	f.harness.register(fs, flagDatabaseURL, flagBinDir, flagProfile)
	f.run.register(fs, "warn", "", "")
	c := &f.cfg
	fs.IntVar(&f.orgs, "orgs", 50, "organizations signed up before the run (HMP_LOADTEST_ORGS)")
	fs.IntVar(&f.props, "properties", 4, "properties per organization (HMP_LOADTEST_PROPERTIES)")
	fs.IntVar(&c.Days, "days", 30, "dates read: the last N days, today included (HMP_LOADTEST_DAYS)")
	fs.Float64Var(&c.ZipfS, "zipf", 1.1, "skew (> 1) of the reads over dates, tenants and properties, most recent first (HMP_LOADTEST_ZIPF)")
	fs.IntVar(&c.Clients, "clients", 64, "closed-loop readers (HMP_LOADTEST_CLIENTS)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured window of each run (HMP_LOADTEST_DURATION)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unmeasured warm-up of each run (HMP_LOADTEST_WARMUP)")
	fs.Float64Var(&c.WriteRate, "write-rate", 5, "revenue creates per second beside the reads (they invalidate the cache); negative: none (HMP_LOADTEST_WRITE_RATE)")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed of the workload (HMP_LOADTEST_SEED)")
	fs.IntVar(&f.cached, "cache-entries", 0, "report cache size of the cached run; 0: the profile's (HMP_LOADTEST_CACHE_ENTRIES)")
}

// loadtestReads runs `hmp loadtest reads`: the same daily-report read load
// against an API with its report cache and one with HMP_CACHE_ENTRIES=-1,
// one after the other on the same data, and prints them side by side.
func loadtestReads(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f readsFlags
	fs := newFlagSet("hmp loadtest reads", readsUsage, stderr)
	f.register(fs)
	logger, err := f.run.parse(fs, args, stderr, func() error { return errors.Join(f.cfg.Validate(), f.checkTenants()) })
	if err != nil {
		return err
	}
	h, err := f.harness.start(ctx, logger)
	if err != nil {
		return err
	}
	defer h.Close()
	var tenants []loadtest.Tenant
	var results []loadtest.ReadsResult
	for _, run := range []struct {
		name    string
		entries int
	}{{"cached", f.cached}, {"uncached", -1}} {
		fmt.Fprintf(stderr, "reads: %s run, %s\n", run.name, f.cfg.Duration)
		r, err := f.runOnce(ctx, h, run.name, run.entries, &tenants)
		if err != nil {
			return fmt.Errorf("%s run: %w", run.name, err)
		}
		results = append(results, *r)
	}
	rep := loadtest.NewReadsReport([]loadtest.Param{
		{Name: "orgs", Value: fmt.Sprint(f.orgs)}, {Name: "properties", Value: fmt.Sprint(f.props)}, {Name: "days", Value: fmt.Sprint(f.cfg.Days)},
		{Name: "clients", Value: fmt.Sprint(f.cfg.Clients)}, {Name: "duration", Value: f.cfg.Duration.String()},
		{Name: "zipf", Value: fmt.Sprint(f.cfg.ZipfS)}, {Name: "writeRate", Value: fmt.Sprint(f.cfg.WriteRate)}, {Name: "profile", Value: orDefault(f.harness.profile)},
	}, results...)
	return writeReport(rep, f.run.jsonPath, stdout)
}

func (f *readsFlags) checkTenants() error {
	var errs []error
	if f.orgs < 1 {
		errs = append(errs, fmt.Errorf("--orgs must be positive, got %d", f.orgs))
	}
	if f.props < 1 {
		errs = append(errs, fmt.Errorf("--properties must be positive, got %d", f.props))
	}
	return errors.Join(errs...)
}

// runOnce runs the reads against an API with the given cache size; the
// first run signs up the tenants, the second reuses them (one token
// secret serves both).
func (f *readsFlags) runOnce(ctx context.Context, h *loadtest.Harness, name string, entries int, tenants *[]loadtest.Tenant) (*loadtest.ReadsResult, error) {
	acfg := config.Config{Profile: f.harness.profile}
	acfg.Cache.Entries = entries
	api, err := h.StartAPI(ctx, acfg)
	if err != nil {
		return nil, err
	}
	defer api.Close()
	client, err := loadtest.NewClient(api.URL, f.cfg.Clients+16, 0)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	if *tenants == nil {
		if *tenants, err = loadtest.Seed(ctx, client, loadtest.RunID(), f.orgs, f.props, 4); err != nil {
			return nil, err
		}
	}
	c := f.cfg
	c.Client, c.Tenants, c.Name = client, *tenants, name
	return loadtest.Reads(ctx, c)
}
