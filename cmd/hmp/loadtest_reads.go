package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"hmp/internal/app"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
)

// loadtestReads runs `hmp loadtest reads`: the same daily-report read load
// against an API with its report cache and one with HMP_CACHE_ENTRIES=0,
// one after the other on the same data, and prints them side by side.
func loadtestReads(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp loadtest reads", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                       loadtest.ReadsConfig
		orgs, props, cacheEntries int
		databaseURL, binDir       string
		profile, jsonPath, logLvl string
	)
	fs.IntVar(&orgs, "orgs", 50, "organizations signed up before the run (HMP_LOADTEST_ORGS)")
	fs.IntVar(&props, "properties", 4, "properties per organization (HMP_LOADTEST_PROPERTIES)")
	fs.IntVar(&cfg.Days, "days", 30, "dates read: the last N days, today included (HMP_LOADTEST_DAYS)")
	fs.Float64Var(&cfg.ZipfS, "zipf", 1.1, "skew (> 1) of the reads over dates, tenants and properties, most recent first (HMP_LOADTEST_ZIPF)")
	fs.IntVar(&cfg.Clients, "clients", 64, "closed-loop readers (HMP_LOADTEST_CLIENTS)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured window of each run (HMP_LOADTEST_DURATION)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured warm-up of each run (HMP_LOADTEST_WARMUP)")
	fs.Float64Var(&cfg.WriteRate, "write-rate", 5, "revenue creates per second beside the reads (they invalidate the cache); negative: none (HMP_LOADTEST_WRITE_RATE)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the workload (HMP_LOADTEST_SEED)")
	fs.IntVar(&cacheEntries, "cache-entries", 0, "report cache size of the cached run; 0: the profile's (HMP_LOADTEST_CACHE_ENTRIES)")
	fs.StringVar(&profile, "profile", "", "scaling profile of both runs; empty: the serve default (HMP_LOADTEST_PROFILE)")
	fs.StringVar(&databaseURL, "database-url", "", "PostgreSQL of the APIs this run starts; empty: a new durable cluster in a temp folder (HMP_LOADTEST_DATABASE_URL)")
	fs.StringVar(&binDir, "postgres-bin", "", "folder of initdb and postgres; empty searches (HMP_POSTGRES_BIN)")
	fs.StringVar(&jsonPath, "json", "", "write the report as JSON to this file, - for stdout instead of the table (HMP_LOADTEST_JSON)")
	fs.StringVar(&logLvl, "log-level", "warn", "log level of the APIs this run starts (HMP_LOADTEST_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp loadtest reads [flags]

Daily-report reads over Zipf-chosen tenants, properties and dates, with a
trickle of revenue creates beside them, against an API started in this
process with its report cache, then against one with HMP_CACHE_ENTRIES=0,
on the same data. Prints reads/s of each and their ratio, p50/p99, the hit
rate overall and by TTL class (active, historical) and the invalidation
lag p99 (projector commit to applied on the instance).

Flags:`)
		fs.PrintDefaults()
	}
	if err := parseUsage(fs, args); err != nil {
		return err
	}
	if orgs < 1 || props < 1 || cfg.Days < 1 || cfg.Clients < 1 || cfg.Duration <= 0 || cfg.ZipfS <= 1 {
		return usageError{fmt.Errorf("orgs, properties, days, clients and duration must be positive and zipf above 1")}
	}
	logger, err := loadtestLogger(logLvl, stderr)
	if err != nil {
		return usageError{err}
	}
	dir, err := loadtestDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if databaseURL == "" {
		local, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: filepath.Join(dir, "postgres"), BinDir: binDir, Logger: logger})
		if err != nil {
			return fmt.Errorf("embedded postgres: %w", err)
		}
		defer local.Stop()
		databaseURL = local.URL()
	}
	var secret [32]byte
	_, _ = rand.Read(secret[:])

	var tenants []loadtest.Tenant
	var results []loadtest.ReadsResult
	for _, run := range []struct {
		name    string
		entries int
	}{{"cached", cacheEntries}, {"uncached", -1}} {
		fmt.Fprintf(stderr, "reads: %s run, %s\n", run.name, cfg.Duration)
		acfg := app.Config{HTTPAddr: "127.0.0.1:0", DataDir: filepath.Join(dir, "app"), DatabaseURL: databaseURL,
			Profile: profile, BcryptCost: 4, TokenSecret: hex.EncodeToString(secret[:])}
		acfg.RateLimits = loadtestLimits()
		acfg.Cache.Entries = run.entries
		a, err := app.Start(ctx, acfg, logger)
		if err != nil {
			return err
		}
		r, err := func() (*loadtest.ReadsResult, error) {
			defer a.Close()
			client, err := loadtest.NewClient("http://"+a.Addr, cfg.Clients+16, 0)
			if err != nil {
				return nil, err
			}
			defer client.Close()
			if tenants == nil { // the same tenants serve both runs (one token secret)
				if tenants, err = loadtest.Seed(ctx, client, loadtest.RunID(), orgs, props, 4); err != nil {
					return nil, err
				}
			}
			c := cfg
			c.Client, c.Tenants, c.Name = client, tenants, run.name
			return loadtest.Reads(ctx, c)
		}()
		if err != nil {
			return fmt.Errorf("%s run: %w", run.name, err)
		}
		results = append(results, *r)
	}
	rep := loadtest.NewReadsReport([]loadtest.Param{
		{Name: "orgs", Value: fmt.Sprint(orgs)}, {Name: "properties", Value: fmt.Sprint(props)}, {Name: "days", Value: fmt.Sprint(cfg.Days)},
		{Name: "clients", Value: fmt.Sprint(cfg.Clients)}, {Name: "duration", Value: cfg.Duration.String()},
		{Name: "zipf", Value: fmt.Sprint(cfg.ZipfS)}, {Name: "writeRate", Value: fmt.Sprint(cfg.WriteRate)}, {Name: "profile", Value: orDefault(profile)},
	}, results...)
	return writeReport(rep, jsonPath, stdout)
}
