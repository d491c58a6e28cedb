package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"hmp/internal/seed"
	"hmp/internal/tools"
)

// seedFlags are the settings of `hmp seed`.
type seedFlags struct {
	common
	cfg      seed.Config
	accounts string
	json     bool
	progress string
	show     int // accounts to print
}

const seedUsage = `Usage: hmp seed --orgs N [flags]

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

Flags:`

func (f *seedFlags) register(fs *flag.FlagSet) {
	f.common.register(fs)
	c := &f.cfg
	fs.IntVar(&c.Orgs, "orgs", 0, "organizations to create (required) (HMP_SEED_ORGS)")
	fs.IntVar(&c.Days, "days", 30, "days of history ending today (HMP_SEED_DAYS)")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed: the same seed, sizes and day give the same data (HMP_SEED_SEED)")
	fs.Float64Var(&c.Density, "density", 2, "mean revenues and expenses per property and day (HMP_SEED_DENSITY)")
	fs.StringVar(&c.Password, "password", "seed-password", "password of every seeded user (HMP_SEED_PASSWORD)")
	fs.IntVar(&c.BcryptCost, "bcrypt-cost", 4, "cost of the (one) password hash (HMP_SEED_BCRYPT_COST)")
	fs.IntVar(&c.Workers, "workers", 0, "COPY connections; 0: twice the CPUs (HMP_SEED_WORKERS)")
	fs.IntVar(&c.ChunkOrgs, "chunk", 250, "organizations per COPY transaction (HMP_SEED_CHUNK)")
	fs.BoolVar(&c.KeepIndexes, "keep-indexes", false, "load with secondary indexes and foreign keys in place instead of rebuilding them after (HMP_SEED_KEEP_INDEXES)")
	fs.BoolVar(&c.MeasureLimit, "measure-limit", false, "first measure this machine's COPY limit (the same rows into index-free copies of the tables) and report the share reached (HMP_SEED_MEASURE_LIMIT)")
	fs.IntVar(&c.KeepAccounts, "show-accounts", 5, "accounts of the first organizations to print (HMP_SEED_SHOW_ACCOUNTS)")
	fs.StringVar(&f.accounts, "accounts", "", "write the credentials (password, email pattern, first 1000 organizations) as JSON to this file (HMP_SEED_ACCOUNTS)")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON instead of text (HMP_SEED_JSON)")
	fs.StringVar(&f.progress, "progress", "auto", "progress display: auto (a bar on a terminal, lines otherwise), bar, lines, none (HMP_SEED_PROGRESS)")
}

// check validates the flags; zero days would mean the default in
// seed.Config: on the command line it is a mistake.
func (f *seedFlags) check() error {
	cfg := &f.cfg
	if cfg.Orgs < 1 {
		return errors.New("--orgs must be at least 1")
	}
	if cfg.Days < 1 || cfg.Density < 0 {
		return fmt.Errorf("--days must be at least 1 (got %d) and --density not negative (got %g)", cfg.Days, cfg.Density)
	}
	f.show = cfg.KeepAccounts
	if f.accounts != "" && cfg.KeepAccounts < 1000 {
		cfg.KeepAccounts = max(cfg.KeepAccounts, min(cfg.Orgs, 1000))
	}
	switch f.progress {
	case "auto", "bar", "lines", "none":
	default:
		return fmt.Errorf("--progress must be auto, bar, lines or none, got %q", f.progress)
	}
	return cfg.WithDefaults().Validate()
}

func seedCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f seedFlags
	fs := newFlagSet("hmp seed", seedUsage, stderr)
	f.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return usageError{err}
	}
	logger, err := f.logger(stderr)
	if err != nil {
		return err
	}
	cfg := f.cfg
	db, err := tools.OpenTool(ctx, f.common.cfg, logger, tools.ToolOptions{Conns: cfg.WithDefaults().Workers + 2})
	if err != nil {
		return err
	}
	defer db.Close()
	cfg.Logger = logger
	report, finish := seedProgress(f.progress, cfg.Orgs, stderr)
	cfg.Progress = report
	res, err := seed.Run(ctx, db.Pool, cfg)
	finish()
	if err != nil {
		return err
	}
	if f.accounts != "" {
		if err := writeAccounts(f.accounts, res); err != nil {
			return err
		}
	}
	if db.Embedded {
		// The load test reuses a seeded data folder (--data) by this record.
		if err := seed.WriteRecord(f.common.cfg.WithDefaults().DataDir, res); err != nil {
			return err
		}
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printSeed(stdout, res, f.show)
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
