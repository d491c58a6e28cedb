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
	"time"

	"hmp/internal/app"
	"hmp/internal/loadtest"
	"hmp/internal/postgres"
)

const loadtestUsage = `Usage: hmp loadtest <scenario> [flags]

Drive an HMP over loopback HTTP and measure it. By default the run starts
its own durable PostgreSQL cluster (fsync on) in a temporary folder and the
API in this process, and removes both at the end.

Scenarios:
  writes    revenue creates as ADMIN: pgbench baseline, closed loop, open loop

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
	dir, err := os.MkdirTemp("", "hmp-loadtest-")
	if err != nil {
		return nil, err
	}
	t.stop = append(t.stop, func() { os.RemoveAll(dir) })
	// The cluster runs as the postgres user when we are root: let it in.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
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
		maxConns   int
		minConns   int
		withPg     bool
		maxP99     time.Duration
		jsonPath   string
		cpuProfile string
		profPhase  string
		strict     bool
		logLevel   string
	)
	fs.StringVar(&srv.url, "url", "", "base URL of a running HMP to drive (loopback only); empty: start one in this process (HMP_LOADTEST_URL)")
	fs.StringVar(&srv.databaseURL, "database-url", "", "PostgreSQL of the API, for pgbench and for the API this run starts; empty with no --url: a new durable cluster in a temp folder (HMP_LOADTEST_DATABASE_URL)")
	fs.StringVar(&srv.binDir, "postgres-bin", "", "folder of initdb, postgres and pgbench; empty searches (HMP_POSTGRES_BIN)")
	fs.IntVar(&maxConns, "pool-max-conns", 0, "pool size of the API this run starts; 0: the serve default (HMP_LOADTEST_POOL_MAX_CONNS)")
	fs.IntVar(&minConns, "pool-min-conns", 0, "idle connections of the API this run starts; 0: the serve default (HMP_LOADTEST_POOL_MIN_CONNS)")
	fs.StringVar(&srv.profile, "profile", "", "scaling profile of the API this run starts; empty: the serve default (HMP_LOADTEST_PROFILE)")
	fs.BoolVar(&srv.pipeline, "pipeline", true, "run the event pipeline (outbox relay, projector) of the API this run starts; false measures the write path alone (HMP_LOADTEST_PIPELINE)")
	fs.IntVar(&srv.maxInFlight, "server-max-in-flight", 0, "requests the API this run starts handles at once; 0: its default (32), negative: unbounded (HMP_LOADTEST_SERVER_MAX_IN_FLIGHT)")
	fs.IntVar(&srv.bcryptCost, "bcrypt-cost", 4, "password hashing cost of the API this run starts (signups only) (HMP_LOADTEST_BCRYPT_COST)")
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
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	srv.pool = postgres.PoolConfig{MaxConns: int32(maxConns), MinConns: int32(minConns)}
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

func writeReport(rep *loadtest.Report, jsonPath string, stdout io.Writer) error {
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
