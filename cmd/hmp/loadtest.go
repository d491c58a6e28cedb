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
	"runtime/pprof"
	"strings"
	"time"

	"hmp/internal/app"
	"hmp/internal/bus"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
	"hmp/internal/ratelimit"
)

const loadtestUsage = `Usage: hmp loadtest <scenario> [flags]

Drive an HMP over loopback HTTP and measure it. By default the run starts
its own durable PostgreSQL cluster (fsync on) in a temporary folder and the
API in this process, and removes both at the end.

Scenarios:
  writes      revenue creates as ADMIN: pgbench baseline, closed loop, open loop
  projection  a backlog of events through the reports projector, per profile
              (baseline vs phase1), with the ratio and an exactness check
  freshness   creates at a fixed rate; time until each write shows in the
              daily report (projector histogram and end-to-end probes)
  mixed       reads and writes over many seeded organizations (Zipf), open or
              closed loop, scenarios, --compare profiles, JSON and HTML reports
  reads       daily-report reads (Zipf) with the report cache vs without, side
              by side: reads/s, p50/p99, hit rate by TTL class, invalidation lag
  guide       the scaling guide's table in one run: per profile on its own
              clone of a seeded database, beside pgbench and bare net/http

Run 'hmp loadtest <scenario> --help' for its flags.
`

func loadtestCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, loadtestUsage)
		if len(args) == 0 {
			return errors.New("a scenario is required")
		}
		return nil
	}
	switch args[0] {
	case "writes":
		return loadtestWrites(ctx, args[1:], stdout, stderr)
	case "projection":
		return loadtestProjection(ctx, args[1:], stdout, stderr)
	case "freshness":
		return loadtestFreshness(ctx, args[1:], stdout, stderr)
	case "mixed":
		return loadtestMixed(ctx, args[1:], stdout, stderr)
	case "reads":
		return loadtestReads(ctx, args[1:], stdout, stderr)
	case "guide":
		return loadtestGuide(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, loadtestUsage)
	return fmt.Errorf("unknown load test scenario %q", args[0])
}

// loadtestTarget is where a run sends its requests: an existing server, or
// one this process starts (with, by default, its own durable cluster).
type loadtestTarget struct {
	url, databaseURL, binDir string
	embedded                 bool
	stop                     []func()
}

func (t *loadtestTarget) close() {
	for i := len(t.stop) - 1; i >= 0; i-- {
		t.stop[i]()
	}
}

type loadtestServer struct {
	url, databaseURL, binDir string
	pool                     postgres.PoolConfig
	bcryptCost               int
	profile                  string
	// pipeline false idles the outbox relay: nothing is published, so
	// nothing is projected either, and a run measures the write path
	// alone.
	pipeline bool
	// maxInFlight bounds the requests the started API handles at once
	// (0: its default).
	maxInFlight int
}

// register adds the flags of the target to fs; pool reads them once fs
// is parsed.
func (s *loadtestServer) register(fs *flag.FlagSet) (pool func() postgres.PoolConfig) {
	var maxConns, minConns int
	fs.StringVar(&s.url, "url", "", "base URL of a running HMP to drive (loopback only); empty: start one in this process (HMP_LOADTEST_URL)")
	fs.StringVar(&s.databaseURL, "database-url", "", "PostgreSQL of the API, for its settings and CPU (and pgbench), and for the API this run starts; empty with no --url: a new durable cluster in a temp folder (HMP_LOADTEST_DATABASE_URL)")
	fs.StringVar(&s.binDir, "postgres-bin", "", "folder of initdb, postgres and pgbench; empty searches (HMP_POSTGRES_BIN)")
	fs.IntVar(&maxConns, "pool-max-conns", 0, "pool size of the API this run starts; 0: the profile's (HMP_LOADTEST_POOL_MAX_CONNS)")
	fs.IntVar(&minConns, "pool-min-conns", 0, "idle connections of the API this run starts; 0: the profile's (HMP_LOADTEST_POOL_MIN_CONNS)")
	fs.StringVar(&s.profile, "profile", "", "scaling profile of the API this run starts; empty: the serve default (HMP_LOADTEST_PROFILE)")
	fs.IntVar(&s.maxInFlight, "server-max-in-flight", 0, "requests the API this run starts handles at once; 0: its default (32), negative: unbounded (HMP_LOADTEST_SERVER_MAX_IN_FLIGHT)")
	fs.IntVar(&s.bcryptCost, "bcrypt-cost", 4, "password hashing cost of the API this run starts (signups only) (HMP_LOADTEST_BCRYPT_COST)")
	return func() postgres.PoolConfig {
		return postgres.PoolConfig{MaxConns: int32(maxConns), MinConns: int32(minConns)}
	}
}

// loadtestDir makes the temporary folder of a run, open to the cluster's
// user (it runs as postgres when we are root).
func loadtestDir() (string, error) {
	dir, err := os.MkdirTemp("", "hmp-loadtest-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// start returns the target: s.url as is, or an API started in this process
// on s.databaseURL, or on a new durable cluster in a temporary folder.
func (s loadtestServer) start(ctx context.Context, logger *slog.Logger) (_ *loadtestTarget, err error) {
	t := &loadtestTarget{url: s.url, databaseURL: s.databaseURL, binDir: s.binDir}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if s.url != "" {
		return t, nil
	}
	dir, err := loadtestDir()
	if err != nil {
		return nil, err
	}
	t.stop = append(t.stop, func() { os.RemoveAll(dir) })
	if t.databaseURL == "" {
		local, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: filepath.Join(dir, "postgres"), BinDir: s.binDir, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("embedded postgres: %w", err)
		}
		t.stop = append(t.stop, func() { _ = local.Stop() })
		t.databaseURL, t.binDir = local.URL(), local.BinDir()
	}
	var secret [32]byte
	_, _ = rand.Read(secret[:])
	cfg := app.Config{
		HTTPAddr: "127.0.0.1:0", DataDir: filepath.Join(dir, "app"), DatabaseURL: t.databaseURL, Profile: s.profile,
		Pool: s.pool, BcryptCost: s.bcryptCost, TokenSecret: hex.EncodeToString(secret[:]), MaxInFlight: s.maxInFlight,
	}
	cfg.RateLimits = loadtestLimits()
	if !s.pipeline {
		// The relay sleeps this long after a cycle that found little: its
		// first one, at start, finds nothing.
		cfg.Relay.PollInterval = 365 * 24 * time.Hour
	}
	a, err := app.Start(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	t.stop = append(t.stop, a.Close)
	t.url, t.embedded = "http://"+a.Addr, true
	return t, nil
}

func loadtestWrites(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp loadtest writes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		srv        loadtestServer
		cfg        loadtest.WritesConfig
		pb         loadtest.Pgbench
		withPg     bool
		maxP99     time.Duration
		jsonPath   string
		cpuProfile string
		profPhase  string
		strict     bool
		logLevel   string
	)
	pool := srv.register(fs)
	fs.BoolVar(&srv.pipeline, "pipeline", true, "run the event pipeline (outbox relay, projector) of the API this run starts; false measures the write path alone (HMP_LOADTEST_PIPELINE)")
	fs.IntVar(&cfg.Orgs, "orgs", 10, "organizations signed up before the run (HMP_LOADTEST_ORGS)")
	fs.IntVar(&cfg.Properties, "properties", 5, "properties per organization (HMP_LOADTEST_PROPERTIES)")
	fs.IntVar(&cfg.Clients, "clients", 32, "closed-loop concurrent clients (HMP_LOADTEST_CLIENTS)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured warm-up before every phase (HMP_LOADTEST_WARMUP)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured length of every phase (HMP_LOADTEST_DURATION)")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "repeat pgbench, closed loop and open loop this many times, interleaved (HMP_LOADTEST_ROUNDS)")
	fs.Uint64Var(&cfg.MaxRequests, "max-requests", 0, "most requests of a closed-loop phase; 0: only --duration bounds it (HMP_LOADTEST_MAX_REQUESTS)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open-loop requests per second; 0: half the pgbench tps of the round (else half the closed-loop rate); negative: no open loop (HMP_LOADTEST_RATE)")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 512, "most open-loop requests in flight (HMP_LOADTEST_MAX_IN_FLIGHT)")
	fs.BoolVar(&cfg.IdempotencyKeys, "idempotency-keys", false, "send a fresh Idempotency-Key with every create (HMP_LOADTEST_IDEMPOTENCY_KEYS)")
	fs.BoolVar(&withPg, "pgbench", true, "run the pgbench baseline on the API's database (needs it known) (HMP_LOADTEST_PGBENCH)")
	fs.IntVar(&pb.Clients, "pgbench-clients", 8, "pgbench clients (HMP_LOADTEST_PGBENCH_CLIENTS)")
	fs.IntVar(&pb.Threads, "pgbench-threads", 2, "pgbench threads (HMP_LOADTEST_PGBENCH_THREADS)")
	fs.StringVar(&pb.Mode, "pgbench-mode", "prepared", "pgbench query protocol: simple, extended or prepared (HMP_LOADTEST_PGBENCH_MODE)")
	fs.Float64Var(&cfg.MinRatio, "min-ratio", 0.70, "target: API writes/s at least this share of pgbench tps (HMP_LOADTEST_MIN_RATIO)")
	fs.DurationVar(&maxP99, "max-p99", 20*time.Millisecond, "target: open-loop p99 under this (HMP_LOADTEST_MAX_P99)")
	fs.DurationVar(&cfg.MaxSettle, "max-settle", 30*time.Second, "longest wait before a phase for this process and its PostgreSQL to go quiet; negative: none (HMP_LOADTEST_MAX_SETTLE)")
	fs.BoolVar(&strict, "strict", false, "exit with an error when a check fails (HMP_LOADTEST_STRICT)")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file; - for stdout instead of the table (HMP_LOADTEST_JSON)")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process during the first phase named by --cpuprofile-phase (HMP_LOADTEST_CPUPROFILE)")
	fs.StringVar(&profPhase, "cpuprofile-phase", "closed", "phase to profile: closed, open or pgbench (HMP_LOADTEST_CPUPROFILE_PHASE)")
	fs.StringVar(&logLevel, "log-level", "warn", "log level of progress and of the API this run starts: debug, info, warn, error (HMP_LOADTEST_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp loadtest writes [flags]

Sign up --orgs organizations with --properties properties each, then per
round: pgbench with a two-insert transaction (the row and the event a
revenue create commits) on the API's own database; --clients closed-loop
clients POSTing /v1/finance/revenues as ADMIN; and an open loop at --rate
measuring latency from each request's scheduled time. Every phase runs
--warmup unmeasured, then --duration measured, and stops by itself.
The report compares API writes/s with pgbench tps and checks the targets.

Flags:`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	logger, err := loadtestLogger(logLevel, stderr)
	if err != nil {
		return err
	}
	srv.pool = pool()
	cfg.MaxP99 = maxP99
	if cfg.Warmup == 0 {
		cfg.Warmup = -1 // none, not the default
	}
	cfg.Logger = logger
	if cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.Clients < 1 || cfg.Orgs < 1 || cfg.Properties < 1 || cfg.Rounds < 1 {
		return errors.New("duration, clients, orgs, properties and rounds must be positive, warmup not negative")
	}

	target, err := srv.start(ctx, logger)
	if err != nil {
		return err
	}
	defer target.close()
	client, err := loadtest.NewClient(target.url, max(cfg.Clients, cfg.MaxInFlight), 30*time.Second)
	if err != nil {
		return err
	}
	defer client.Close()
	cfg.Client = client
	cfg.DatabaseURL = target.databaseURL

	var notes []string
	if withPg {
		if target.databaseURL == "" {
			notes = append(notes, "pgbench skipped: --database-url is needed with --url")
		} else {
			dir, err := os.MkdirTemp("", "hmp-pgbench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			pb.BinDir, pb.DatabaseURL, pb.Dir = target.binDir, target.databaseURL, dir
			if pb.BinDir == "" {
				pb.BinDir, _ = postgres.FindBinDir("") // else pgbench from $PATH
			}
			cfg.Pgbench = &pb
		}
	}
	if cpuProfile != "" {
		stopProfile, err := profileFirst(cpuProfile, profPhase)
		if err != nil {
			return err
		}
		defer stopProfile("")
		cfg.Between = stopProfile
	}

	rep, err := loadtest.Writes(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Embedded = target.embedded
	if target.embedded {
		rep.Params = append(rep.Params, loadtest.Param{Name: "pipeline", Value: fmt.Sprint(srv.pipeline)})
		if srv.profile != "" {
			rep.Params = append(rep.Params, loadtest.Param{Name: "profile", Value: srv.profile})
		}
		if !srv.pipeline {
			notes = append(notes, "event pipeline idle: events stay in the outbox, nothing is published or projected")
		}
	}
	rep.Notes = append(rep.Notes, notes...)
	if target.embedded {
		rep.Notes = append(rep.Notes, "generator and API share this process and its CPUs (and the machine with PostgreSQL and pgbench)")
	}
	if err := writeReport(rep, jsonPath, stdout); err != nil {
		return err
	}
	if strict && !rep.Passed() {
		return errors.New("a load test check failed")
	}
	return nil
}

// printedReport is a load test's report: a table for people, JSON for tools.
type printedReport interface {
	Print(w io.Writer) error
	WriteJSON(w io.Writer) error
}

// writeReport prints rep, or writes it as JSON to stdout (jsonPath "-"),
// and also to the file jsonPath names.
func writeReport(rep printedReport, jsonPath string, stdout io.Writer) error {
	if jsonPath == "-" {
		return rep.WriteJSON(stdout)
	}
	if err := rep.Print(stdout); err != nil {
		return err
	}
	if jsonPath == "" {
		return nil
	}
	f, err := os.Create(jsonPath)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// profileFirst returns a phase hook that profiles the CPU during the first
// phase named phase and writes the profile to path when it ends.
func profileFirst(path, phase string) (func(next string), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	state := 0 // 0 before, 1 profiling, 2 done
	return func(next string) {
		switch {
		case state == 0 && next == phase:
			if err := pprof.StartCPUProfile(f); err == nil {
				state = 1
			}
		case state == 1 && next != phase:
			pprof.StopCPUProfile()
			f.Close()
			state = 2
		case state == 0 && next == "":
			f.Close()
			state = 2
		}
	}, nil
}

func loadtestLogger(level string, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}

func loadtestProjection(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp loadtest projection", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg        loadtest.ProjectionConfig
		binDir     string
		profiles   string
		jsonPath   string
		cpuProfile string
		profPhase  string
		strict     bool
		logLevel   string
	)
	fs.StringVar(&binDir, "postgres-bin", "", "folder of initdb and postgres; empty searches (HMP_POSTGRES_BIN)")
	fs.IntVar(&cfg.Events, "events", 200_000, "events in the backlog (HMP_LOADTEST_EVENTS)")
	fs.IntVar(&cfg.Properties, "properties", 10_000, "properties the events fall on, in all (HMP_LOADTEST_PROPERTIES)")
	fs.IntVar(&cfg.Orgs, "orgs", 1_000, "organizations the properties belong to (HMP_LOADTEST_ORGS)")
	fs.IntVar(&cfg.Days, "days", 7, "business dates fall on the last this many days (HMP_LOADTEST_DAYS)")
	fs.StringVar(&profiles, "profiles", "baseline,phase1", "scaling profiles to run, in order, comma separated; the first is the ratio's reference (HMP_LOADTEST_PROFILES)")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "repeat the profiles this many times, interleaved (HMP_LOADTEST_ROUNDS)")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", 10*time.Minute, "longest run of one profile; when hit, the rate is over what was done (HMP_LOADTEST_MAX_DURATION)")
	fs.DurationVar(&cfg.MaxSettle, "max-settle", 30*time.Second, "longest wait before a phase for this process and its PostgreSQL to go quiet; negative: none (HMP_LOADTEST_MAX_SETTLE)")
	fs.Float64Var(&cfg.MinRate, "min-rate", 50_000, "target: events/s of the last profile at least this (HMP_LOADTEST_MIN_RATE)")
	fs.Float64Var(&cfg.MinRatio, "min-ratio", 25, "target: the last profile's events/s at least this many times the first's (HMP_LOADTEST_MIN_RATIO)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the generated backlog (HMP_LOADTEST_SEED)")
	fs.BoolVar(&strict, "strict", false, "exit with an error when a check fails (HMP_LOADTEST_STRICT)")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file; - for stdout instead of the table (HMP_LOADTEST_JSON)")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process during the phase named by --cpuprofile-phase (HMP_LOADTEST_CPUPROFILE)")
	fs.StringVar(&profPhase, "cpuprofile-phase", "phase1", "phase to profile: publish or a profile's name (HMP_LOADTEST_CPUPROFILE_PHASE)")
	fs.StringVar(&logLevel, "log-level", "info", "log level of progress: debug, info, warn, error (HMP_LOADTEST_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp loadtest projection [flags]

Start a durable PostgreSQL cluster (fsync on) and an embedded JetStream in a
temporary folder; generate a backlog of --events events over --properties
properties of --orgs organizations (revenues and expenses added, updated,
approved, rejected, deleted; cash counts; daily approvals) exactly as the
finance service writes them, and publish it. Then, per profile of
--profiles, on empty projection tables with a new durable consumer, run the
reports projector with the profile's settings until it has acknowledged
the whole backlog (at most --max-duration), and check that the daily and
monthly balances sum to the generator's totals to the cent. The report
gives events/s, average batch and CPU per event per profile, the ratio of
the last profile to the first, and the checks; an inexact projection fails
the run.

Flags:`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	logger, err := loadtestLogger(logLevel, stderr)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	if cfg.Events < 1 || cfg.Properties < 1 || cfg.Orgs < 1 || cfg.Days < 1 || cfg.Rounds < 1 || cfg.MaxDuration <= 0 {
		return errors.New("events, properties, orgs, days, rounds and max-duration must be positive")
	}
	if cfg.Orgs > cfg.Properties {
		return errors.New("orgs must not exceed properties: every organization needs a property")
	}
	for _, name := range strings.Split(profiles, ",") {
		p, err := app.LookupProfile(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		cfg.Profiles = append(cfg.Profiles, loadtest.ProjectionProfile{Name: p.Name, Pool: p.Pool, Projector: p.Projector})
	}

	dir, err := loadtestDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	local, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: filepath.Join(dir, "postgres"), BinDir: binDir, Logger: logger})
	if err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	defer local.Stop()
	if err := app.Migrate(ctx, local.URL(), logger); err != nil {
		return err
	}
	b, err := bus.Open(ctx, bus.Config{StoreDir: filepath.Join(dir, "nats")}, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	cfg.DatabaseURL, cfg.Bus = local.URL(), b
	if cpuProfile != "" {
		stopProfile, err := profileFirst(cpuProfile, profPhase)
		if err != nil {
			return err
		}
		defer stopProfile("")
		cfg.Between = stopProfile
	}

	rep, err := loadtest.Projection(ctx, cfg)
	if rep != nil {
		rep.Embedded = true
		if werr := writeReport(rep, jsonPath, stdout); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	if strict && !rep.Passed() {
		return errors.New("a load test check failed")
	}
	return nil
}

func loadtestFreshness(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp loadtest freshness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		srv        loadtestServer
		cfg        loadtest.FreshnessConfig
		maxP99     time.Duration
		jsonPath   string
		cpuProfile string
		strict     bool
		logLevel   string
	)
	pool := srv.register(fs)
	fs.IntVar(&cfg.Orgs, "orgs", 50, "organizations taking the write load (HMP_LOADTEST_ORGS)")
	fs.IntVar(&cfg.Properties, "properties", 10, "properties per organization (HMP_LOADTEST_PROPERTIES)")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "open-loop creates per second (HMP_LOADTEST_RATE)")
	fs.Float64Var(&cfg.ExpenseShare, "expense-share", 0.4, "fraction of the creates that are expenses; 0: none (HMP_LOADTEST_EXPENSE_SHARE)")
	fs.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "unmeasured load before the window (HMP_LOADTEST_WARMUP)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "measured window (HMP_LOADTEST_DURATION)")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 512, "most open-loop requests in flight (HMP_LOADTEST_MAX_IN_FLIGHT)")
	fs.Float64Var(&cfg.ProbeRate, "probe-rate", 10, "end-to-end probes started per second (HMP_LOADTEST_PROBE_RATE)")
	fs.IntVar(&cfg.ProbeProperties, "probe-properties", 20, "properties of the probes' own organization (HMP_LOADTEST_PROBE_PROPERTIES)")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", time.Millisecond, "how often a probe reads its daily report (HMP_LOADTEST_POLL_INTERVAL)")
	fs.DurationVar(&cfg.ProbeTimeout, "probe-timeout", 5*time.Second, "a probe not shown after this fails (HMP_LOADTEST_PROBE_TIMEOUT)")
	fs.DurationVar(&maxP99, "max-p99", 100*time.Millisecond, "target: freshness p99 under this, both ways (HMP_LOADTEST_MAX_P99)")
	fs.DurationVar(&cfg.MaxSettle, "max-settle", 30*time.Second, "longest wait before the run for this process and its PostgreSQL to go quiet; negative: none (HMP_LOADTEST_MAX_SETTLE)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the workload (HMP_LOADTEST_SEED)")
	fs.BoolVar(&strict, "strict", false, "exit with an error when a check fails (HMP_LOADTEST_STRICT)")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file; - for stdout instead of the table (HMP_LOADTEST_JSON)")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process during the measured window (HMP_LOADTEST_CPUPROFILE)")
	fs.StringVar(&logLevel, "log-level", "warn", "log level of progress and of the API this run starts: debug, info, warn, error (HMP_LOADTEST_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp loadtest freshness [flags]

Sign up --orgs organizations with --properties properties each, then POST
revenues and expenses as ADMIN in an open loop at --rate for --warmup
(unmeasured) and --duration (measured). Over the measured window, measure
how long a write takes to show in the reports, two ways: the projector's
hmp_projector_event_lag_seconds histogram, read from GET /metrics before and
after the window (quantiles are bucket upper bounds), and end to end: a
sampler writes --probe-rate cash revenues per second to properties of its
own and reads GET /v1/reports/daily-report, without a consistency token,
every --poll-interval until the write shows, timing from the write's 201 to
the first read showing it. The report checks both p99 against --max-p99.

Flags:`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	logger, err := loadtestLogger(logLevel, stderr)
	if err != nil {
		return err
	}
	srv.pool, srv.pipeline = pool(), true
	cfg.MaxP99, cfg.Logger = maxP99, logger
	if cfg.Warmup == 0 {
		cfg.Warmup = -1 // none, not the default
	}
	if cfg.ExpenseShare == 0 {
		cfg.ExpenseShare = -1 // none, not the default
	}
	if cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.Rate <= 0 || cfg.Orgs < 1 || cfg.Properties < 1 || cfg.ProbeRate <= 0 ||
		cfg.ProbeProperties < 1 || cfg.ExpenseShare > 1 {
		return errors.New("duration, rate, orgs, properties, probe rate and probe properties must be positive, warmup not negative, expense share at most 1")
	}

	target, err := srv.start(ctx, logger)
	if err != nil {
		return err
	}
	defer target.close()
	client, err := loadtest.NewClient(target.url, cfg.MaxInFlight+cfg.ProbeProperties+8, 30*time.Second)
	if err != nil {
		return err
	}
	defer client.Close()
	cfg.Client, cfg.DatabaseURL = client, target.databaseURL
	if cpuProfile != "" {
		stopProfile, err := profileFirst(cpuProfile, "measure")
		if err != nil {
			return err
		}
		defer stopProfile("")
		cfg.Between = stopProfile
	}

	rep, err := loadtest.Freshness(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Embedded = target.embedded
	if target.embedded {
		profile := srv.profile
		if profile == "" {
			profile = app.DefaultProfile
		}
		rep.Params = append(rep.Params, loadtest.Param{Name: "profile", Value: profile})
		rep.Notes = append(rep.Notes, "generator, probes and API share this process and its CPUs (and the machine with PostgreSQL)")
	}
	if err := writeReport(rep, jsonPath, stdout); err != nil {
		return err
	}
	if strict && !rep.Passed() {
		return errors.New("a load test check failed")
	}
	return nil
}

// loadtestLimits turns off the login and signup budgets of a server a load
// test starts: its one client address signs up and logs in every
// organization. Write budgets stay the profile's (phase3 measures them).
func loadtestLimits() app.RateLimits {
	return app.RateLimits{
		LoginPerEmail: ratelimit.Limit{Count: -1},
		LoginPerAddr:  ratelimit.Limit{Count: -1},
		SignupPerAddr: ratelimit.Limit{Count: -1},
	}
}
