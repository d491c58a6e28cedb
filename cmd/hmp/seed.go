package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"hmp/internal/app"
	"hmp/internal/seed"
)

// usageError is a command line the command cannot run: hmp exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// parseUsage is parse with bad flags reported as a usageError.
func parseUsage(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
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

func seedCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		c        common
		cfg      seed.Config
		accounts string
		jsonOut  bool
		progress string
	)
	c.register(fs)
	fs.IntVar(&cfg.Orgs, "orgs", 0, "organizations to create (required) (HMP_SEED_ORGS)")
	fs.IntVar(&cfg.Days, "days", 30, "days of history ending today (HMP_SEED_DAYS)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed: the same seed, sizes and day give the same data (HMP_SEED_SEED)")
	fs.Float64Var(&cfg.Density, "density", 2, "mean revenues and expenses per property and day (HMP_SEED_DENSITY)")
	fs.StringVar(&cfg.Password, "password", "seed-password", "password of every seeded user (HMP_SEED_PASSWORD)")
	fs.IntVar(&cfg.BcryptCost, "bcrypt-cost", 4, "cost of the (one) password hash (HMP_SEED_BCRYPT_COST)")
	fs.IntVar(&cfg.Workers, "workers", 0, "COPY connections; 0: twice the CPUs (HMP_SEED_WORKERS)")
	fs.IntVar(&cfg.ChunkOrgs, "chunk", 250, "organizations per COPY transaction (HMP_SEED_CHUNK)")
	fs.BoolVar(&cfg.KeepIndexes, "keep-indexes", false, "load with secondary indexes and foreign keys in place instead of rebuilding them after (HMP_SEED_KEEP_INDEXES)")
	fs.BoolVar(&cfg.MeasureLimit, "measure-limit", false, "first measure this machine's COPY limit (the same rows into index-free copies of the tables) and report the share reached (HMP_SEED_MEASURE_LIMIT)")
	fs.IntVar(&cfg.KeepAccounts, "show-accounts", 5, "accounts of the first organizations to print (HMP_SEED_SHOW_ACCOUNTS)")
	fs.StringVar(&accounts, "accounts", "", "write the credentials (password, email pattern, first 1000 organizations) as JSON to this file (HMP_SEED_ACCOUNTS)")
	fs.BoolVar(&jsonOut, "json", false, "print the result as JSON instead of text (HMP_SEED_JSON)")
	fs.StringVar(&progress, "progress", "auto", "progress display: auto (a bar on a terminal, lines otherwise), bar, lines, none (HMP_SEED_PROGRESS)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp seed --orgs N [flags]

Bulk-load N organizations (1-3 properties each in several time zones, an
ADMIN and a MANAGER each) with --days of history ending today: revenues and
expenses (cash and bank; mostly approved, some pending, rejected, corrected
or deleted), cash counts and daily approvals, with their events, the cash
book projection and the relay's progress, through COPY, into the database
of HMP_DATABASE_URL or the embedded one under --data-dir. The database must
hold no organization yet. Afterwards 'hmp reconcile' finds nothing and
'hmp serve' neither re-publishes nor re-projects the history.

Every user's password is --password; emails are admin-<i>@seed.hmp.test and
manager-<i>@seed.hmp.test for i from 0.

Flags:`)
		fs.PrintDefaults()
	}
	if err := parseUsage(fs, args); err != nil {
		return err
	}
	if cfg.Orgs < 1 {
		return usageError{errors.New("--orgs must be at least 1")}
	}
	if cfg.Days < 1 || cfg.Density < 0 {
		// Zero would mean the default in seed.Config: on the command line it
		// is a mistake.
		return usageError{fmt.Errorf("--days must be at least 1 (got %d) and --density not negative (got %g)", cfg.Days, cfg.Density)}
	}
	show := cfg.KeepAccounts
	if accounts != "" && cfg.KeepAccounts < 1000 {
		cfg.KeepAccounts = max(cfg.KeepAccounts, min(cfg.Orgs, 1000))
	}
	switch progress {
	case "auto", "bar", "lines", "none":
	default:
		return usageError{fmt.Errorf("--progress must be auto, bar, lines or none, got %q", progress)}
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return usageError{err}
	}
	logger, err := c.logger(stderr)
	if err != nil {
		return usageError{err}
	}
	db, err := app.OpenTool(ctx, c.cfg, logger, app.ToolOptions{Conns: cfg.WithDefaults().Workers + 2})
	if err != nil {
		return err
	}
	defer db.Close()
	cfg.Logger = logger
	report, finish := seedProgress(progress, cfg.Orgs, stderr)
	cfg.Progress = report
	res, err := seed.Run(ctx, db.Pool, cfg)
	finish()
	if err != nil {
		return err
	}
	if accounts != "" {
		if err := writeAccounts(accounts, res); err != nil {
			return err
		}
	}
	if db.Embedded {
		// The load test reuses a seeded data folder (--data) by this record.
		if err := writeSeedRecord(c.cfg.WithDefaults().DataDir, res); err != nil {
			return err
		}
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printSeed(stdout, res, show)
	return nil
}

// seedProgress returns the progress callback of a run and a function that
// ends the display.
func seedProgress(mode string, total int, w io.Writer) (func(int), func()) {
	if mode == "auto" {
		mode = "lines"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				mode = "bar"
			}
		}
	}
	switch mode {
	case "bar":
		bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("seeding orgs"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("orgs"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionFullWidth())
		var mu sync.Mutex
		return func(done int) {
				mu.Lock()
				_ = bar.Set(done)
				mu.Unlock()
			}, func() {
				_ = bar.Finish()
				fmt.Fprintln(w)
			}
	case "lines":
		start := time.Now()
		var (
			mu   sync.Mutex
			last time.Time
		)
		return func(done int) {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(last) < 5*time.Second && done < total {
				return
			}
			last = time.Now()
			el := time.Since(start)
			eta := time.Duration(float64(el) / float64(done) * float64(total-done))
			fmt.Fprintf(w, "seed: %d/%d orgs (%.0f%%), %.0f orgs/s, elapsed %s, eta %s\n", done, total,
				100*float64(done)/float64(total), float64(done)/el.Seconds(), el.Round(time.Second), eta.Round(time.Second))
		}, func() {}
	}
	return nil, func() {}
}

func writeAccounts(path string, res seed.Result) error {
	out := struct {
		Seed         uint64         `json:"seed"`
		Orgs         int            `json:"orgs"`
		Days         int            `json:"days"`
		Password     string         `json:"password"`
		AdminEmail   string         `json:"adminEmail"`
		ManagerEmail string         `json:"managerEmail"`
		Accounts     []seed.Account `json:"accounts"`
	}{res.Seed, res.Orgs, res.Days, res.Password, "admin-<i>@seed.hmp.test", "manager-<i>@seed.hmp.test", res.Accounts}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write accounts: %w", err)
	}
	return nil
}

func printSeed(w io.Writer, res seed.Result, show int) {
	fmt.Fprintf(w, "seeded %d orgs x %d days (density %g rows per property day, seed %d)\n", res.Orgs, res.Days, res.Density, res.Seed)
	fmt.Fprintf(w, "rows %d in %s (copy %s, indexes %s): %.0f rows/s\n", res.TotalRows, res.Elapsed.Round(time.Millisecond),
		res.Load.Round(time.Millisecond), res.Indexes.Round(time.Millisecond), res.RowsPerSecond)
	if res.LimitRowsPerSecond > 0 {
		fmt.Fprintf(w, "copy limit %.0f rows/s (the same generation and COPY into index- and key-free tables); seed reached %.0f%% of it\n",
			res.LimitRowsPerSecond, 100*res.LimitShare)
		fmt.Fprintf(w, "copy alone (rows generated beforehand): %.0f rows/s\n", res.CopyOnlyRowsPerSecond)
	}
	fmt.Fprintf(w, "database size %.1f MiB\n", float64(res.DatabaseBytes)/(1<<20))
	for _, t := range []string{"orgs", "properties", "users", "transactions", "events", "cash_counts", "daily_approvals", "daily_cash_balances", "monthly_cash_balances"} {
		fmt.Fprintf(w, "  %-22s %d\n", t, res.Rows[t])
	}
	fmt.Fprintf(w, "password of every user: %s\n", res.Password)
	for i, a := range res.Accounts {
		if i >= show {
			break
		}
		fmt.Fprintf(w, "  org %d %s: %s / %s, properties %v\n", a.Index, a.OrgID, a.AdminEmail, a.ManagerEmail, a.PropertyIDs)
	}
}

// seedRecordName is the file in a data folder that says what was seeded
// into its embedded database.
const seedRecordName = "seed.json"

func writeSeedRecord(dir string, res seed.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, seedRecordName), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write seed record: %w", err)
	}
	return nil
}

// readSeedRecord returns what was seeded into the data folder dir (ok
// false when nothing was).
func readSeedRecord(dir string) (seed.Result, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, seedRecordName))
	if errors.Is(err, os.ErrNotExist) {
		return seed.Result{}, false, nil
	}
	if err != nil {
		return seed.Result{}, false, err
	}
	var res seed.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return seed.Result{}, false, fmt.Errorf("read seed record: %w", err)
	}
	return res, true, nil
}
