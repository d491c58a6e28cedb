package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"hmp/internal/config"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
	"hmp/internal/reports"
	"hmp/internal/tools"
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
	return dispatch(ctx, args, stdout, stderr, "load test scenario", loadtestUsage, map[string]command{
		"writes": loadtestWrites, "projection": loadtestProjection, "freshness": loadtestFreshness,
		"mixed": loadtestMixed, "reads": loadtestReads, "guide": loadtestGuide,
	})
}

// harnessFlags are the flags of the HMP a load test drives: one running
// at --url, or one this run starts on its own durable cluster (or on
// --database-url), registered here once for every scenario.
type harnessFlags struct {
	url, databaseURL, binDir, data, profile string
	maxConns, minConns, maxInFlight         int
	bcryptCost                              int
}

// harnessFlag registers one harness flag on fs.
type harnessFlag func(h *harnessFlags, fs *flag.FlagSet)

var (
	flagURL = func(h *harnessFlags, fs *flag.FlagSet) {
		fs.StringVar(&h.url, "url", "", "base URL of a running HMP to drive (loopback only; mixed: its database seeded with 'hmp seed --orgs N'); empty: start one in this process (HMP_LOADTEST_URL)")
	}
	flagDatabaseURL = func(h *harnessFlags, fs *flag.FlagSet) {
		fs.StringVar(&h.databaseURL, "database-url", "", "PostgreSQL of the API (its settings, CPU and pgbench) and of the APIs this run starts; empty with no --url: a new durable cluster in a temp folder (HMP_LOADTEST_DATABASE_URL)")
	}
	flagBinDir = func(h *harnessFlags, fs *flag.FlagSet) {
		fs.StringVar(&h.binDir, "postgres-bin", "", "folder of initdb, postgres and pgbench; empty searches (HMP_POSTGRES_BIN)")
	}
	flagData = func(h *harnessFlags, fs *flag.FlagSet) {
		fs.StringVar(&h.data, "data", "", "data folder to seed once and reuse (its embedded PostgreSQL and seed.json); empty: a temporary one, removed at the end (HMP_LOADTEST_DATA)")
	}
	flagProfile = func(h *harnessFlags, fs *flag.FlagSet) {
		fs.StringVar(&h.profile, "profile", "", "scaling profile of the APIs this run starts (mixed: without --compare); empty: the serve default (HMP_LOADTEST_PROFILE)")
	}
	// flagServer are the settings of the API a writes or freshness run
	// starts.
	flagServer = func(h *harnessFlags, fs *flag.FlagSet) {
		fs.IntVar(&h.maxConns, "pool-max-conns", 0, "pool size of the API this run starts; 0: the profile's (HMP_LOADTEST_POOL_MAX_CONNS)")
		fs.IntVar(&h.minConns, "pool-min-conns", 0, "idle connections of the API this run starts; 0: the profile's (HMP_LOADTEST_POOL_MIN_CONNS)")
		fs.IntVar(&h.maxInFlight, "server-max-in-flight", 0, "requests the API this run starts handles at once; 0: its default (32), negative: unbounded (HMP_LOADTEST_SERVER_MAX_IN_FLIGHT)")
		fs.IntVar(&h.bcryptCost, "bcrypt-cost", 4, "password hashing cost of the API this run starts (signups only) (HMP_LOADTEST_BCRYPT_COST)")
	}
)

func (h *harnessFlags) register(fs *flag.FlagSet, flags ...harnessFlag) {
	for _, f := range flags {
		f(h, fs)
	}
}

// start starts the harness: the run's folder and its database.
func (h *harnessFlags) start(ctx context.Context, logger *slog.Logger) (*loadtest.Harness, error) {
	return loadtest.StartHarness(ctx, loadtest.HarnessConfig{DatabaseURL: h.databaseURL, DataDir: h.data, BinDir: h.binDir, Logger: logger})
}

// apiConfig is the config of the APIs this run starts, before the
// harness completes it.
func (h *harnessFlags) apiConfig() config.Config {
	return config.Config{Profile: h.profile, BcryptCost: h.bcryptCost, MaxInFlight: h.maxInFlight,
		Pool: postgres.PoolConfig{MaxConns: int32(h.maxConns), MinConns: int32(h.minConns)}}
}

// loadtestTarget is where a writes or freshness run sends its requests:
// the server at --url, or one this process starts.
type loadtestTarget struct {
	url, databaseURL, binDir string
	embedded                 bool
	close                    func()
}

// target returns --url as is, or starts the harness and role all on it
// with cfg (apiConfig and the scenario's settings).
func (h *harnessFlags) target(ctx context.Context, cfg config.Config, logger *slog.Logger) (*loadtestTarget, error) {
	if h.url != "" {
		return &loadtestTarget{url: h.url, databaseURL: h.databaseURL, binDir: h.binDir, close: func() {}}, nil
	}
	hs, err := h.start(ctx, logger)
	if err != nil {
		return nil, err
	}
	api, err := hs.StartAPI(ctx, cfg)
	if err != nil {
		hs.Close()
		return nil, err
	}
	return &loadtestTarget{url: api.URL, databaseURL: hs.DatabaseURL, binDir: hs.BinDir, embedded: true, close: hs.Close}, nil
}

// runFlags are the flags every measuring scenario shares: the log level,
// the report's files, the CPU profile and --strict.
type runFlags struct {
	logLevel, jsonPath       string
	cpuProfile, profilePhase string
	strict                   bool
}

// register adds --log-level (default logLevel) and --json; with phase
// (the default of --cpuprofile-phase, "-" for none) --cpuprofile, and
// --strict.
func (r *runFlags) register(fs *flag.FlagSet, logLevel, phase, phaseHelp string) {
	fs.StringVar(&r.logLevel, "log-level", logLevel, "log level of progress and of the APIs this run starts: debug, info, warn, error (HMP_LOADTEST_LOG_LEVEL)")
	fs.StringVar(&r.jsonPath, "json", "", "also write the report as JSON to this file; - for stdout instead of the table (HMP_LOADTEST_JSON)")
	if phase == "" {
		return
	}
	fs.BoolVar(&r.strict, "strict", false, "exit with an error when a check fails (HMP_LOADTEST_STRICT)")
	if phase == "-" {
		fs.StringVar(&r.cpuProfile, "cpuprofile", "", "write a CPU profile of this process during the measured window (HMP_LOADTEST_CPUPROFILE)")
		return
	}
	fs.StringVar(&r.cpuProfile, "cpuprofile", "", "write a CPU profile of this process during the phase named by --cpuprofile-phase (HMP_LOADTEST_CPUPROFILE)")
	fs.StringVar(&r.profilePhase, "cpuprofile-phase", phase, phaseHelp+" (HMP_LOADTEST_CPUPROFILE_PHASE)")
}

// profile starts the CPU profile hook of --cpuprofile (nil without it)
// and returns its stop.
func (r *runFlags) profile() (between func(string), stop func(), err error) {
	if r.cpuProfile == "" {
		return nil, func() {}, nil
	}
	hook, err := profileFirst(r.cpuProfile, r.profilePhase)
	if err != nil {
		return nil, nil, err
	}
	return hook, func() { hook("") }, nil
}

// finish writes rep and, with --strict, fails a run whose checks failed.
func (r *runFlags) finish(rep interface {
	printedReport
	Passed() bool
}, stdout io.Writer) error {
	if err := writeReport(rep, r.jsonPath, stdout); err != nil {
		return err
	}
	if r.strict && !rep.Passed() {
		return errors.New("a load test check failed")
	}
	return nil
}

// newFlagSet is a scenario's flag set with its usage text.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// writesFlags are the settings of `hmp loadtest writes`.
type writesFlags struct {
	harness  harnessFlags
	run      runFlags
	cfg      loadtest.WritesConfig
	pb       loadtest.Pgbench
	pipeline bool
	pgbench  bool
}

const writesUsage = `Usage: hmp loadtest writes [flags]

Sign up --orgs organizations with --properties properties each, then per
round: pgbench with a two-insert transaction (the row and the event a
revenue create commits) on the API's own database; --clients closed-loop
clients POSTing /v1/finance/revenues as ADMIN; and an open loop at --rate
measuring latency from each request's scheduled time. Every phase runs
--warmup unmeasured, then --duration measured, and stops by itself.
The report compares API writes/s with pgbench tps and checks the targets.

Flags:`

func (f *writesFlags) register(fs *flag.FlagSet) {
	f.harness.register(fs, flagURL, flagDatabaseURL, flagBinDir, flagProfile, flagServer)
	f.run.register(fs, "warn", "closed", "phase to profile: closed, open or pgbench")
	c := &f.cfg
	fs.BoolVar(&f.pipeline, "pipeline", true, "run the event pipeline (outbox relay, projector) of the API this run starts; false measures the write path alone (HMP_LOADTEST_PIPELINE)")
	fs.IntVar(&c.Orgs, "orgs", 10, "organizations signed up before the run (HMP_LOADTEST_ORGS)")
	fs.IntVar(&c.Properties, "properties", 5, "properties per organization (HMP_LOADTEST_PROPERTIES)")
	fs.IntVar(&c.Clients, "clients", 32, "closed-loop concurrent clients (HMP_LOADTEST_CLIENTS)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unmeasured warm-up before every phase (HMP_LOADTEST_WARMUP)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured length of every phase (HMP_LOADTEST_DURATION)")
	fs.IntVar(&c.Rounds, "rounds", 3, "repeat pgbench, closed loop and open loop this many times, interleaved (HMP_LOADTEST_ROUNDS)")
	fs.Uint64Var(&c.MaxRequests, "max-requests", 0, "most requests of a closed-loop phase; 0: only --duration bounds it (HMP_LOADTEST_MAX_REQUESTS)")
	fs.Float64Var(&c.Rate, "rate", 0, "open-loop requests per second; 0: half the pgbench tps of the round (else half the closed-loop rate); negative: no open loop (HMP_LOADTEST_RATE)")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", 512, "most open-loop requests in flight (HMP_LOADTEST_MAX_IN_FLIGHT)")
	fs.BoolVar(&c.IdempotencyKeys, "idempotency-keys", false, "send a fresh Idempotency-Key with every create (HMP_LOADTEST_IDEMPOTENCY_KEYS)")
	fs.BoolVar(&f.pgbench, "pgbench", true, "run the pgbench baseline on the API's database (needs it known) (HMP_LOADTEST_PGBENCH)")
	fs.IntVar(&f.pb.Clients, "pgbench-clients", 8, "pgbench clients (HMP_LOADTEST_PGBENCH_CLIENTS)")
	fs.IntVar(&f.pb.Threads, "pgbench-threads", 2, "pgbench threads (HMP_LOADTEST_PGBENCH_THREADS)")
	fs.StringVar(&f.pb.Mode, "pgbench-mode", "prepared", "pgbench query protocol: simple, extended or prepared (HMP_LOADTEST_PGBENCH_MODE)")
	fs.Float64Var(&c.MinRatio, "min-ratio", 0.70, "target: API writes/s at least this share of pgbench tps (HMP_LOADTEST_MIN_RATIO)")
	fs.DurationVar(&c.MaxP99, "max-p99", 20*time.Millisecond, "target: open-loop p99 under this (HMP_LOADTEST_MAX_P99)")
	fs.DurationVar(&c.MaxSettle, "max-settle", 30*time.Second, "longest wait before a phase for this process and its PostgreSQL to go quiet; negative: none (HMP_LOADTEST_MAX_SETTLE)")
}

func loadtestWrites(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f writesFlags
	fs := newFlagSet("hmp loadtest writes", writesUsage, stderr)
	f.register(fs)
	logger, err := f.run.parse(fs, args, stderr, func() error { return f.cfg.Validate() })
	if err != nil {
		return err
	}
	if f.cfg.Warmup == 0 {
		f.cfg.Warmup = -1 // none, not the default
	}
	f.cfg.Logger = logger
	api := f.harness.apiConfig()
	if !f.pipeline {
		// The relay sleeps this long after a cycle that found little: its
		// first one, at start, finds nothing; no commit wakes it.
		api.Relay.PollInterval, api.Relay.IdleInterval = 365*24*time.Hour, -1
	}
	target, err := f.harness.target(ctx, api, logger)
	if err != nil {
		return err
	}
	defer target.close()
	rep, err := f.measure(ctx, target)
	if err != nil {
		return err
	}
	return f.run.finish(rep, stdout)
}

// measure runs the writes scenario against target and notes how.
func (f *writesFlags) measure(ctx context.Context, target *loadtestTarget) (*loadtest.Report, error) {
	cfg := f.cfg
	client, err := loadtest.NewClient(target.url, max(cfg.Clients, cfg.MaxInFlight), 30*time.Second)
	if err != nil {
		return nil, usageError{err}
	}
	defer client.Close()
	cfg.Client, cfg.DatabaseURL = client, target.databaseURL
	var notes []string
	if f.pgbench {
		if target.databaseURL == "" {
			notes = append(notes, "pgbench skipped: --database-url is needed with --url")
		} else {
			dir, err := os.MkdirTemp("", "hmp-pgbench-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			pb := f.pb
			pb.BinDir, pb.DatabaseURL, pb.Dir = target.binDir, target.databaseURL, dir
			if pb.BinDir == "" {
				pb.BinDir, _ = postgres.FindBinDir("") // else pgbench from $PATH
			}
			cfg.Pgbench = &pb
		}
	}
	between, stop, err := f.run.profile()
	if err != nil {
		return nil, err
	}
	defer stop()
	cfg.Between = between
	rep, err := loadtest.Writes(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rep.Embedded = target.embedded
	if target.embedded {
		rep.Params = append(rep.Params, loadtest.Param{Name: "pipeline", Value: fmt.Sprint(f.pipeline)})
		if f.harness.profile != "" {
			rep.Params = append(rep.Params, loadtest.Param{Name: "profile", Value: f.harness.profile})
		}
		if !f.pipeline {
			notes = append(notes, "event pipeline idle: events stay in the outbox, nothing is published or projected")
		}
	}
	rep.Notes = append(rep.Notes, notes...)
	if target.embedded {
		rep.Notes = append(rep.Notes, "generator and API share this process and its CPUs (and the machine with PostgreSQL and pgbench)")
	}
	return rep, nil
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
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}

// parse parses a scenario's command line, checks it (any problem is a
// usage error) and returns the run's logger. check must read the flags
// when called: a method value of a config would copy it before parsing.
func (r *runFlags) parse(fs *flag.FlagSet, args []string, stderr io.Writer, check func() error) (*slog.Logger, error) {
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if err := check(); err != nil {
		return nil, usageError{err}
	}
	return loadtestLogger(r.logLevel, stderr)
}

// lookupProfiles resolves the comma-separated profile names of the flag
// name; an empty or unknown name is an error.
func lookupProfiles(name, list string) ([]config.Profile, error) {
	var ps []config.Profile
	var errs []error
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		p, err := config.LookupProfile(n)
		if err != nil || n == "" {
			errs = append(errs, fmt.Errorf("%s: unknown profile %q", name, n))
			continue
		}
		ps = append(ps, p)
	}
	return ps, errors.Join(errs...)
}

// projectionFlags are the settings of `hmp loadtest projection`.
type projectionFlags struct {
	harness  harnessFlags
	run      runFlags
	cfg      loadtest.ProjectionConfig
	profiles string
}

const projectionUsage = `Usage: hmp loadtest projection [flags]

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

Flags:`

func (f *projectionFlags) register(fs *flag.FlagSet) {
	f.harness.register(fs, flagBinDir)
	f.run.register(fs, "info", "phase1", "phase to profile: publish or a profile's name")
	c := &f.cfg
	fs.IntVar(&c.Events, "events", 200_000, "events in the backlog (HMP_LOADTEST_EVENTS)")
	fs.IntVar(&c.Properties, "properties", 10_000, "properties the events fall on, in all (HMP_LOADTEST_PROPERTIES)")
	fs.IntVar(&c.Orgs, "orgs", 1_000, "organizations the properties belong to (HMP_LOADTEST_ORGS)")
	fs.IntVar(&c.Days, "days", 7, "business dates fall on the last this many days (HMP_LOADTEST_DAYS)")
	fs.StringVar(&f.profiles, "profiles", "baseline,phase1", "scaling profiles to run, in order, comma separated; the first is the ratio's reference (HMP_LOADTEST_PROFILES)")
	fs.IntVar(&c.Rounds, "rounds", 1, "repeat the profiles this many times, interleaved (HMP_LOADTEST_ROUNDS)")
	fs.DurationVar(&c.MaxDuration, "max-duration", 10*time.Minute, "longest run of one profile; when hit, the rate is over what was done (HMP_LOADTEST_MAX_DURATION)")
	fs.DurationVar(&c.MaxSettle, "max-settle", 30*time.Second, "longest wait before a phase for this process and its PostgreSQL to go quiet; negative: none (HMP_LOADTEST_MAX_SETTLE)")
	fs.Float64Var(&c.MinRate, "min-rate", 50_000, "target: events/s of the last profile at least this (HMP_LOADTEST_MIN_RATE)")
	fs.Float64Var(&c.MinRatio, "min-ratio", 25, "target: the last profile's events/s at least this many times the first's (HMP_LOADTEST_MIN_RATIO)")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the generated backlog (HMP_LOADTEST_SEED)")
}

// check validates the flags and resolves --profiles.
func (f *projectionFlags) check() error {
	ps, err := lookupProfiles("--profiles", f.profiles)
	for _, p := range ps {
		f.cfg.Profiles = append(f.cfg.Profiles, loadtest.ProjectionProfile{Name: p.Name, Pool: p.Pool, Projector: reports.ProjectorConfig{Projector: p.Projector}})
	}
	return errors.Join(f.cfg.Validate(), err)
}

func loadtestProjection(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f projectionFlags
	fs := newFlagSet("hmp loadtest projection", projectionUsage, stderr)
	f.register(fs)
	logger, err := f.run.parse(fs, args, stderr, f.check)
	if err != nil {
		return err
	}
	f.cfg.Logger = logger
	h, err := f.harness.start(ctx, logger)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := tools.Migrate(ctx, h.DatabaseURL, logger); err != nil {
		return err
	}
	b, err := h.StartBus(ctx)
	if err != nil {
		return err
	}
	f.cfg.DatabaseURL, f.cfg.Bus = h.DatabaseURL, b
	between, stop, err := f.run.profile()
	if err != nil {
		return err
	}
	defer stop()
	f.cfg.Between = between
	rep, err := loadtest.Projection(ctx, f.cfg)
	if rep == nil {
		return err
	}
	rep.Embedded = true
	return errors.Join(err, f.run.finish(rep, stdout))
}

// freshnessFlags are the settings of `hmp loadtest freshness`.
type freshnessFlags struct {
	harness harnessFlags
	run     runFlags
	cfg     loadtest.FreshnessConfig
}

const freshnessUsage = `Usage: hmp loadtest freshness [flags]

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

Flags:`

func (f *freshnessFlags) register(fs *flag.FlagSet) {
	f.harness.register(fs, flagURL, flagDatabaseURL, flagBinDir, flagProfile, flagServer)
	f.run.register(fs, "warn", "-", "")
	f.run.profilePhase = "measure"
	c := &f.cfg
	fs.IntVar(&c.Orgs, "orgs", 50, "organizations taking the write load (HMP_LOADTEST_ORGS)")
	fs.IntVar(&c.Properties, "properties", 10, "properties per organization (HMP_LOADTEST_PROPERTIES)")
	fs.Float64Var(&c.Rate, "rate", 1000, "open-loop creates per second (HMP_LOADTEST_RATE)")
	fs.Float64Var(&c.ExpenseShare, "expense-share", 0.4, "fraction of the creates that are expenses; 0: none (HMP_LOADTEST_EXPENSE_SHARE)")
	fs.DurationVar(&c.Warmup, "warmup", 5*time.Second, "unmeasured load before the window (HMP_LOADTEST_WARMUP)")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "measured window (HMP_LOADTEST_DURATION)")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", 512, "most open-loop requests in flight (HMP_LOADTEST_MAX_IN_FLIGHT)")
	fs.Float64Var(&c.ProbeRate, "probe-rate", 10, "end-to-end probes started per second (HMP_LOADTEST_PROBE_RATE)")
	fs.IntVar(&c.ProbeProperties, "probe-properties", 20, "properties of the probes' own organization (HMP_LOADTEST_PROBE_PROPERTIES)")
	fs.DurationVar(&c.PollInterval, "poll-interval", time.Millisecond, "how often a probe reads its daily report (HMP_LOADTEST_POLL_INTERVAL)")
	fs.DurationVar(&c.ProbeTimeout, "probe-timeout", 5*time.Second, "a probe not shown after this fails (HMP_LOADTEST_PROBE_TIMEOUT)")
	fs.DurationVar(&c.MaxP99, "max-p99", 100*time.Millisecond, "target: freshness p99 under this, both ways (HMP_LOADTEST_MAX_P99)")
	fs.DurationVar(&c.MaxSettle, "max-settle", 30*time.Second, "longest wait before the run for this process and its PostgreSQL to go quiet; negative: none (HMP_LOADTEST_MAX_SETTLE)")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the workload (HMP_LOADTEST_SEED)")
}

func loadtestFreshness(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f freshnessFlags
	fs := newFlagSet("hmp loadtest freshness", freshnessUsage, stderr)
	f.register(fs)
	logger, err := f.run.parse(fs, args, stderr, func() error { return f.cfg.Validate() })
	if err != nil {
		return err
	}
	cfg := f.cfg
	cfg.Logger = logger
	if cfg.Warmup == 0 {
		cfg.Warmup = -1 // none, not the default
	}
	if cfg.ExpenseShare == 0 {
		cfg.ExpenseShare = -1 // none, not the default
	}
	target, err := f.harness.target(ctx, f.harness.apiConfig(), logger)
	if err != nil {
		return err
	}
	defer target.close()
	client, err := loadtest.NewClient(target.url, cfg.MaxInFlight+cfg.ProbeProperties+8, 30*time.Second)
	if err != nil {
		return usageError{err}
	}
	defer client.Close()
	cfg.Client, cfg.DatabaseURL = client, target.databaseURL
	between, stop, err := f.run.profile()
	if err != nil {
		return err
	}
	defer stop()
	cfg.Between = between
	rep, err := loadtest.Freshness(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Embedded = target.embedded
	if target.embedded {
		rep.Params = append(rep.Params, loadtest.Param{Name: "profile", Value: orDefault(f.harness.profile)})
		rep.Notes = append(rep.Notes, "generator, probes and API share this process and its CPUs (and the machine with PostgreSQL)")
	}
	return f.run.finish(rep, stdout)
}
