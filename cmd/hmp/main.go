// Command hmp is the HMP server and its operator tools.
//
//	hmp serve     run the API (embedded PostgreSQL unless HMP_DATABASE_URL)
//	hmp migrate   apply the schema migrations and exit
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // business dates must not depend on the host's zone files

	"hmp/internal/app"
	"hmp/internal/config"
	"hmp/internal/domain"
	"hmp/internal/knobs"
	"hmp/internal/postgres"
	recon "hmp/internal/reconcile"
	"hmp/internal/tools"
)

// envName finds the environment variable a flag's help names: "(HMP_X)".
var envName = regexp.MustCompile(`\((HMP_[A-Z0-9_]+)\)$`)

const usage = `hmp: the HMP finance and reporting backend

Usage:
  hmp <command> [flags]

Commands:
  serve     run the HTTP API (embedded PostgreSQL unless HMP_DATABASE_URL is set)
  migrate   apply the schema migrations and exit
  reconcile recompute the cash book from the transactions and report mismatches
  loadtest  drive a local HMP and measure it (writes, projection, freshness, mixed)
  seed      bulk-load organizations with days of history (COPY), for scale tests
  chaos     write through injected faults (kill -9, database restarts and stall, bus restart) and check nothing is lost
  partitions show the spread of the hash partitions by org_id (--org: where one lives); 'partitions migrate' partitions an unpartitioned schema online
  dlq       list the dead letters (dlq list), re-drive them after a fix (dlq replay)
  alerts    print the alert rules as a Prometheus rules file (alerts rules)

  advise-indexes  propose indexes the slowest statements need, proven by hypothetical indexes
  rollback  switch every instance back live: to baseline at once (emergency) or step by step (gradual)
  verify    walk each organization's event hash chain and name the first broken link
  rebuild   rebuild the report projections from the event store and swap them in

Run 'hmp <command> --help' for the flags of a command. Every flag can also be
set through the HMP_* environment variable named in its help.
`

func main() {
	if os.Getenv("GOGC") == "" {
		// The event pipeline allocates per message; measured, collecting
		// less often saves about a tenth of the process's CPU. Memory is
		// the cheaper resource here. GOGC overrides.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "hmp:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is 0 for success and --help, 2 for a command line the command
// cannot run (usageError), 1 for any other failure.
func exitCode(err error) int {
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		return 2
	}
	return 1
}

// command is one hmp command (or load test scenario) given the arguments
// after its name.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

var commands = map[string]command{
	"serve": serve, "migrate": migrate, "reconcile": reconcile, "loadtest": loadtestCmd, "chaos": chaosCmd,
	"dlq": dlq, "seed": seedCmd, "alerts": alertsCmd, "partitions": partitionsCmd, "advise-indexes": adviseIndexes,
	"rollback": rollbackCmd, "verify": verifyCmd, "rebuild": rebuildCmd,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, args, stdout, stderr, "command", usage, commands)
}

// dispatch runs the command of cmds that args[0] names (what it is
// called in the errors), or prints usage: to stdout when asked for help,
// to stderr with a usage error when the name is missing or unknown.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer, what, usage string, cmds map[string]command) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return usageError{fmt.Errorf("a %s is required", what)}
		}
		return nil
	}
	if cmd, ok := cmds[args[0]]; ok {
		return cmd(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown %s %q", what, args[0])}
}

// common are the flags every command that touches the database shares.
type common struct {
	cfg       config.Config
	logFormat string
	logLevel  string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.cfg.DataDir, "data-dir", ".hmp", "folder of the embedded PostgreSQL and NATS data and the token secret (HMP_DATA_DIR)")
	fs.StringVar(&c.cfg.DatabaseURL, "database-url", "", "PostgreSQL URL; empty starts an embedded cluster under the data dir (HMP_DATABASE_URL)")
	fs.StringVar(&c.cfg.PostgresBinDir, "postgres-bin", "", "folder of initdb and postgres for the embedded cluster; empty searches (HMP_POSTGRES_BIN)")
	fs.Func("postgres-setting", "name=value[,name=value...] server settings of the embedded cluster, repeatable; they override its sizing from the machine's memory (shared_buffers, effective_cache_size, work_mem, maintenance_work_mem) (HMP_POSTGRES_SETTING)", func(v string) error {
		for _, kv := range strings.Split(v, ",") {
			name, value, ok := strings.Cut(kv, "=")
			if name = strings.TrimSpace(name); !ok || name == "" {
				return fmt.Errorf("want name=value, got %q", kv)
			}
			if c.cfg.PostgresSettings == nil {
				c.cfg.PostgresSettings = map[string]string{}
			}
			c.cfg.PostgresSettings[name] = strings.TrimSpace(value)
		}
		return nil
	})
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or text (HMP_LOG_FORMAT)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error (HMP_LOG_LEVEL)")
	fs.IntVar(&c.cfg.Partitions, "partitions", 0, "hash partitions by org_id of a schema this command creates; 0: the profile's (16; 64 in phase2 and phase3); -1: unpartitioned; an existing schema keeps its layout (HMP_PARTITIONS)")
}

func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format must be json or text, got %q", c.logFormat)}
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	fs.StringVar(&c.cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "address the API listens on (HMP_HTTP_ADDR)")
	fs.StringVar(&c.cfg.Profile, "profile", config.DefaultProfile, "scaling profile: baseline (the guide's before), phase1, phase2 or phase3 (HMP_PROFILE)")
	fs.StringVar(&c.cfg.NATSURL, "nats-url", "", "NATS JetStream URL; empty runs an embedded server under the data dir (HMP_NATS_URL)")
	maxConns := fs.Int("pool-max-conns", 0, "most open database connections; 0: the profile's (phase1: 100) (HMP_POOL_MAX_CONNS)")
	minConns := fs.Int("pool-min-conns", 0, "connections kept open while idle; 0: the profile's (phase1: 10) (HMP_POOL_MIN_CONNS)")
	idle := fs.Duration("pool-max-idle", 0, "close connections idle this long; 0: the profile's (phase1: 10m) (HMP_POOL_MAX_IDLE)")
	life := fs.Duration("pool-max-lifetime", 0, "close connections older than this; 0: the profile's (phase1: 1h) (HMP_POOL_MAX_LIFETIME)")
	var k knobs.Knobs
	knobs.Register(fs, &k, config.ProfileKnobs())
	fs.DurationVar(&c.cfg.Cache.ActiveTTL, "cache-active-ttl", 0, "cache lifetime of a report touching an active date (today-3 days or later, in the property's zone); 0: the profile's (15s) (HMP_CACHE_ACTIVE_TTL)")
	fs.DurationVar(&c.cfg.Cache.HistoricalTTL, "cache-historical-ttl", 0, "cache lifetime of any other report; 0: the profile's (2m) (HMP_CACHE_HISTORICAL_TTL)")
	fs.StringVar(&c.cfg.TokenSecret, "token-secret", "", "secret signing access tokens, >= 32 bytes; empty: generated into the data dir (HMP_TOKEN_SECRET)")
	fs.StringVar(&c.cfg.AdminToken, "admin-token", "", "operator token of /v1/admin and the dashboard, >= 32 random-looking bytes (openssl rand -hex 32); empty: generated into the data dir as admin.token (role all; split roles: closed) (HMP_ADMIN_TOKEN)")
	fs.DurationVar(&c.cfg.TokenTTL, "token-ttl", 24*time.Hour, "access token lifetime (HMP_TOKEN_TTL)")
	fs.IntVar(&c.cfg.BcryptCost, "bcrypt-cost", 10, "password hashing cost (HMP_BCRYPT_COST)")
	registerEdge(fs, &c.cfg)
	registerOperator(fs, &c.cfg)
	registerAlerts(fs, &c.cfg)

	registerRoles(fs, &c.cfg)

	registerAdvice(fs, &c.cfg)

	registerReplicas(fs, &c.cfg)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: hmp serve [flags]\n\nRun the HTTP API until SIGINT or SIGTERM, then drain and stop.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	c.cfg.Pool = postgres.PoolConfig{MaxConns: int32(*maxConns), MinConns: int32(*minConns), MaxConnIdleTime: *idle, MaxConnLifetime: *life}
	c.cfg.Projector.Projector = k.Projector
	c.cfg.Cache.Entries, c.cfg.Cache.Invalidation = k.Cache.Entries, k.Cache.Invalidation
	if err := c.cfg.WithDefaults().Validate(); err != nil {
		return usageError{fmt.Errorf("config: %w", err)}
	}
	logger, err := c.logger(stdout)
	if err != nil {
		return err
	}
	a, err := app.Start(ctx, c.cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	printOperator(stderr, a)
	return a.Wait(ctx)
}

func reconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	org := fs.String("org", "", "check one organization (its id); empty: every organization (HMP_RECONCILE_ORG)")
	property := fs.String("property", "", "check one property (its id; needs --org) (HMP_RECONCILE_PROPERTY)")
	fix := fs.Bool("fix", false, "correct every mismatch found (the profile's correction mode), then check again (HMP_RECONCILE_FIX)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: hmp reconcile [flags]\n\nRecompute every daily row, monthly rollup and counted closing of the cash book from\nthe approved and pending transactions, streaming, and print the mismatches as JSON.\nWith --fix, correct them and check again (\"fixed\").\nExits 1 when there is any mismatch (with --fix: any left after the correction).\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	var orgID, propID *domain.ID
	if *org != "" {
		id, err := domain.ParseID(*org)
		if err != nil {
			return usageError{fmt.Errorf("--org: %w", err)}
		}
		orgID = &id
	}
	if *property != "" {
		if orgID == nil {
			return usageError{errors.New("--property needs --org")}
		}
		id, err := domain.ParseID(*property)
		if err != nil {
			return usageError{fmt.Errorf("--property: %w", err)}
		}
		propID = &id
	}
	logger, err := c.logger(stderr)
	if err != nil {
		return err
	}
	res, err := tools.Reconcile(ctx, c.cfg, logger, orgID, propID, *fix)
	if err != nil {
		return err
	}
	out := reconcileJSON(res.Reconciliation)
	left := res.Mismatches
	if res.Fixed != nil {
		out["fixed"] = reconcileJSON(*res.Fixed)
		left = res.Fixed.Mismatches
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	if left > 0 {
		return fmt.Errorf("%d mismatches", left)
	}
	return nil
}

func reconcileJSON(r recon.Reconciliation) map[string]any {
	return map[string]any{
		"daysChecked": r.DaysChecked, "monthsChecked": r.MonthsChecked, "countsChecked": r.CountsChecked,
		"mismatches": r.Mismatches, "details": r.Details, "durationMs": r.Duration.Milliseconds(),
	}
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: hmp migrate [flags]\n\nApply every pending schema migration and exit. Safe to repeat.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	logger, err := c.logger(stdout)
	if err != nil {
		return err
	}
	db, err := tools.OpenTool(ctx, c.cfg, logger, tools.ToolOptions{})
	if err != nil {
		return err
	}
	db.Close()
	logger.Info("migrations_current")
	return nil
}

// parse applies the HMP_* environment variable named at the end of each
// flag's help, then the command line, so flags win over the environment.
// A malformed value is an error, not a silent default; every problem of
// the command line is a usageError.
func parse(fs *flag.FlagSet, args []string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		m := envName.FindStringSubmatch(f.Usage)
		if m == nil {
			return
		}
		if v, ok := os.LookupEnv(m[1]); ok && v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", m[1], v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %q", fs.Args())}
	}
	return nil
}

// subcommand returns args[0] when it is one of subs. Otherwise it prints
// usage to stderr and returns flag.ErrHelp for a request for help, or a
// usageError saying that cmd (such as "hmp dlq") wants one of subs.
func subcommand(cmd, usage string, args []string, stderr io.Writer, subs ...string) (string, error) {
	if len(args) > 0 && slices.Contains(subs, args[0]) {
		return args[0], nil
	}
	fmt.Fprintln(stderr, usage)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return "", flag.ErrHelp
	}
	return "", usageError{fmt.Errorf("%s: %s is required", cmd, strings.Join(subs, " or "))}
}

// usageError is a command line the command cannot run: hmp exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
