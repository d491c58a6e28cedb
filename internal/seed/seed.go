// Package seed bulk-loads a realistic history into an HMP database:
// organizations with their properties and users, and days of revenues,
// expenses, reviews, corrections, deletions, cash counts and daily
// approvals, with the events the write path would have appended, the cash
// book the projector would have built, and the relay's cursor placed after
// all of it. Rows go in through COPY on several connections; each owning
// package (tenancy, finance, eventstore, reports) provides its rows, so
// the seeded tables hold exactly what the API would have written.
package seed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/postgres"
	"hmp/internal/reports"
	"hmp/internal/tenancy"
)

// Config describes a data set and how to load it. The zero value of each
// field means its default.
type Config struct {
	// Orgs is the number of organizations; required (> 0).
	Orgs int
	// Days is the days of history ending today (in each property's zone).
	// Default 30.
	Days int
	// Seed makes the data set repeatable: the same Seed, Orgs, Days,
	// Density and clock give the same rows. Default 0 is a valid seed.
	Seed uint64
	// Density is the mean number of revenues and expenses per property
	// and day (fractions are drawn). Default 2.
	Density float64
	// Password is the password of every seeded user. Default
	// "seed-password".
	Password string
	// BcryptCost hashes Password (once for all users). Default 4 (the
	// minimum): load tests log in many seeded users.
	BcryptCost int
	// Workers is the number of COPY connections. Default 2 x GOMAXPROCS.
	Workers int
	// ChunkOrgs is the organizations per COPY transaction. Default 250.
	ChunkOrgs int
	// KeepIndexes loads into the tables with their secondary indexes and
	// foreign keys in place; by default they are dropped first and
	// rebuilt after the load, which is faster from about 1,000 orgs.
	KeepIndexes bool
	// KeepAccounts is how many organizations' accounts Result lists (the
	// first ones). Default 10.
	KeepAccounts int
	// MeasureLimit also measures the machine's COPY limit first: the first
	// LimitOrgs organizations generated and copied as the seed does, into
	// index- and key-free copies of the same tables.
	MeasureLimit bool
	// LimitOrgs is the sample of MeasureLimit. Default Orgs/10, at least
	// min(Orgs, 500), at most 20000.
	LimitOrgs int
	// Now is the clock; the history ends at its reading. Default time.Now.
	Now func() time.Time
	// Progress, if set, is called after every committed chunk with the
	// organizations done so far.
	Progress func(done int)
	// Logger receives phase messages. Default discards.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Days == 0 {
		c.Days = 30
	}
	if c.Density == 0 {
		c.Density = 2
	}
	if c.Password == "" {
		c.Password = "seed-password"
	}
	if c.BcryptCost == 0 {
		c.BcryptCost = bcrypt.MinCost
	}
	if c.Workers == 0 {
		c.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if c.ChunkOrgs == 0 {
		c.ChunkOrgs = 250
	}
	if c.KeepAccounts == 0 {
		c.KeepAccounts = 10
	}
	if c.LimitOrgs == 0 {
		c.LimitOrgs = min(max(c.Orgs/10, min(c.Orgs, 500)), 20000)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem of c (defaults applied).
func (c Config) Validate() error {
	var errs []error
	if c.Orgs < 1 {
		errs = append(errs, fmt.Errorf("orgs must be at least 1, got %d", c.Orgs))
	}
	if c.Days < 1 || c.Days > 3660 {
		errs = append(errs, fmt.Errorf("days must be between 1 and 3660, got %d", c.Days))
	}
	if c.Density < 0 || c.Density > 1000 {
		errs = append(errs, fmt.Errorf("density must be between 0 and 1000 rows per property day, got %g", c.Density))
	}
	if len(c.Password) < 8 {
		errs = append(errs, errors.New("password must be at least 8 characters"))
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		errs = append(errs, fmt.Errorf("bcrypt cost must be between %d and %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, c.BcryptCost))
	}
	if c.Workers < 1 || c.ChunkOrgs < 1 || c.KeepAccounts < 0 || c.LimitOrgs < 0 {
		errs = append(errs, errors.New("workers and chunk orgs must be positive, keep accounts and limit orgs not negative"))
	}
	return errors.Join(errs...)
}

// Account is how to log in to a seeded organization.
type Account struct {
	Index        int      `json:"index"`
	OrgID        string   `json:"orgId"`
	AdminEmail   string   `json:"adminEmail"`
	ManagerEmail string   `json:"managerEmail"`
	PropertyIDs  []string `json:"propertyIds"`
}

// Counts are the rows written per table.
type Counts map[string]int64

// Result is what a seed wrote and how fast.
type Result struct {
	Orgs     int       `json:"orgs"`
	Days     int       `json:"days"`
	Seed     uint64    `json:"seed"`
	Density  float64   `json:"density"`
	Password string    `json:"password"`
	Accounts []Account `json:"accounts"`
	Rows     Counts    `json:"rows"`
	// TotalRows sums Rows.
	TotalRows int64 `json:"totalRows"`
	// Load is the copy phase, Indexes the index and key rebuild, Elapsed
	// the whole run (limit measurement excluded).
	Load    time.Duration `json:"loadNs"`
	Indexes time.Duration `json:"indexesNs"`
	Elapsed time.Duration `json:"elapsedNs"`
	// RowsPerSecond is TotalRows over Elapsed.
	RowsPerSecond float64 `json:"rowsPerSecond"`
	// LimitRowsPerSecond is the measured COPY limit (0 when not measured):
	// the same generation and COPY into index- and key-free copies of the
	// tables, for LimitOrgs organizations; LimitShare is RowsPerSecond
	// over it. CopyOnlyRowsPerSecond is the COPY alone (rows generated
	// beforehand) of a smaller sample: the server side's ceiling.
	LimitRowsPerSecond    float64 `json:"limitRowsPerSecond,omitempty"`
	LimitShare            float64 `json:"limitShare,omitempty"`
	CopyOnlyRowsPerSecond float64 `json:"copyOnlyRowsPerSecond,omitempty"`
	// DatabaseBytes is the database's size after the run.
	DatabaseBytes int64 `json:"databaseBytes"`
}

// table is one COPY target: its name, its columns and the rows of a batch.
type table struct {
	name string
	cols []string
	rows func(*batch) [][]any
}

// tables lists the targets in copy order: referenced tables first.
var tables = []table{
	{"orgs", tenancy.OrgColumns, func(b *batch) [][]any { return b.orgs }},
	{"users", tenancy.UserColumns, func(b *batch) [][]any { return b.users }},
	{"user_logins", tenancy.LoginColumns, func(b *batch) [][]any { return b.logins }},
	{"properties", tenancy.PropertyColumns, func(b *batch) [][]any { return b.properties }},
	{"manager_properties", tenancy.ManagerPropertyColumns, func(b *batch) [][]any { return b.managerProps }},
	{"transactions", finance.BulkColumns, func(b *batch) [][]any { return b.transactions }},
	{"daily_approvals", finance.DailyApprovalColumns, func(b *batch) [][]any { return b.approvals }},
	{"events", eventstore.BulkColumns, func(b *batch) [][]any { return b.events }},
	{"event_chain_heads", eventstore.HeadColumns, func(b *batch) [][]any { return b.heads }},
	{"cash_counts", finance.CashCountColumns, func(b *batch) [][]any { return b.counts }},
	{"daily_cash_balances", reports.DailyColumns, func(b *batch) [][]any { return b.daily }},
	{"monthly_cash_balances", reports.MonthlyColumns, func(b *batch) [][]any { return b.monthly }},
}

// Run seeds the database of pool, which must be migrated and hold no
// organization and no event yet. Nothing else may write meanwhile.
func Run(ctx context.Context, pool *pgxpool.Pool, cfg Config) (Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("seed config: %w", err)
	}
	var busy bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM orgs) OR EXISTS (SELECT 1 FROM events)`).Scan(&busy); err != nil {
		return Result{}, fmt.Errorf("seed: check the database is empty: %w", postgres.Translate(err))
	}
	if busy {
		return Result{}, errors.New("seed: the database already holds organizations or events; seed needs an empty (migrated) database")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(cfg.Password), cfg.BcryptCost)
	if err != nil {
		return Result{}, fmt.Errorf("seed: hash password: %w", err)
	}
	g, err := newGenerator(cfg, cfg.Now(), hash)
	if err != nil {
		return Result{}, err
	}
	res := Result{Orgs: cfg.Orgs, Days: cfg.Days, Seed: cfg.Seed, Density: cfg.Density, Password: cfg.Password, Rows: Counts{}}
	if cfg.MeasureLimit && cfg.LimitOrgs > 0 {
		if res.CopyOnlyRowsPerSecond, res.LimitRowsPerSecond, err = measureLimit(ctx, pool, g, cfg); err != nil {
			return Result{}, err
		}
		cfg.Logger.Info("seed_copy_limit", "rows_per_second", int64(res.LimitRowsPerSecond), "copy_only_rows_per_second", int64(res.CopyOnlyRowsPerSecond))
	}
	start := time.Now()
	var dropped []ddl
	if !cfg.KeepIndexes {
		if dropped, err = dropSecondary(ctx, pool); err != nil {
			return Result{}, err
		}
		cfg.Logger.Info("seed_indexes_dropped", "count", len(dropped))
	}
	counts, accounts, err := load(ctx, pool, g, cfg, "", cfg.Progress)
	if err != nil {
		if len(dropped) > 0 {
			// Leave the schema whole even when the load failed.
			_ = rebuild(context.WithoutCancel(ctx), pool, dropped, cfg.Workers)
		}
		return Result{}, err
	}
	res.Load = time.Since(start)
	res.Rows, res.Accounts = counts, accounts
	ixStart := time.Now()
	if err := rebuild(ctx, pool, dropped, cfg.Workers); err != nil {
		return Result{}, err
	}
	res.Indexes = time.Since(ixStart)
	if _, err := pool.Exec(ctx, eventstore.PlaceRelayAfterSQL); err != nil {
		return Result{}, fmt.Errorf("seed: place the relay after the history: %w", postgres.Translate(err))
	}
	if _, err := pool.Exec(ctx, reports.MarkReflectedSQL); err != nil {
		return Result{}, fmt.Errorf("seed: mark the history reflected: %w", postgres.Translate(err))
	}
	if err := finance.RecountVolume(ctx, pool); err != nil {
		return Result{}, fmt.Errorf("seed: %w", err)
	}
	if err := analyze(ctx, pool, cfg.Workers); err != nil {
		return Result{}, err
	}
	res.Elapsed = time.Since(start)
	for _, n := range counts {
		res.TotalRows += n
	}
	res.RowsPerSecond = float64(res.TotalRows) / res.Elapsed.Seconds()
	if res.LimitRowsPerSecond > 0 {
		res.LimitShare = res.RowsPerSecond / res.LimitRowsPerSecond
	}
	if err := pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&res.DatabaseBytes); err != nil {
		return Result{}, fmt.Errorf("seed: database size: %w", postgres.Translate(err))
	}
	return res, nil
}

// load generates organizations [0, cfg.Orgs) in chunks and copies each
// chunk in one transaction, on cfg.Workers connections. prefix names the
// target tables' prefix ("" for the real ones).
func load(ctx context.Context, pool *pgxpool.Pool, g *generator, cfg Config, prefix string, progress func(int)) (Counts, []Account, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next     atomic.Int64
		done     atomic.Int64
		mu       sync.Mutex
		counts   = Counts{}
		accounts []Account
		wg       sync.WaitGroup
	)
	for range cfg.Workers {
		wg.Go(func() {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				cancel(fmt.Errorf("seed: acquire a connection: %w", err))
				return
			}
			defer conn.Release()
			// A seed is one bulk load: losing its last commits to a crash
			// means seeding again, not losing data anyone relies on.
			if _, err := conn.Exec(ctx, `SET synchronous_commit = off`); err != nil {
				cancel(fmt.Errorf("seed: session settings: %w", err))
				return
			}
			for ctx.Err() == nil {
				first := int(next.Add(int64(cfg.ChunkOrgs))) - cfg.ChunkOrgs
				if first >= cfg.Orgs {
					return
				}
				b := &batch{firstOrg: first}
				for i := first; i < min(first+cfg.ChunkOrgs, cfg.Orgs); i++ {
					if err := g.gen(b, i); err != nil {
						cancel(fmt.Errorf("seed: generate org %d: %w", i, err))
						return
					}
				}
				g.finish(b)
				n, err := copyBatch(ctx, conn.Conn(), b, prefix)
				if err != nil {
					cancel(err)
					return
				}
				mu.Lock()
				for k, v := range n {
					counts[k] += v
				}
				accounts = append(accounts, b.accounts...)
				mu.Unlock()
				d := done.Add(int64(b.n))
				if progress != nil {
					progress(int(d))
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, nil, err
	}
	sortAccounts(accounts)
	return counts, accounts, nil
}

func sortAccounts(a []Account) {
	slices.SortFunc(a, func(x, y Account) int { return cmp.Compare(x.Index, y.Index) })
}

// copyBatch copies every table's rows of b in one transaction.
func copyBatch(ctx context.Context, conn *pgx.Conn, b *batch, prefix string) (Counts, error) {
	n := Counts{}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, t := range tables {
			rows := t.rows(b)
			if len(rows) == 0 {
				continue
			}
			c, err := tx.CopyFrom(ctx, pgx.Identifier{prefix + t.name}, t.cols, pgx.CopyFromRows(rows))
			if err != nil {
				return fmt.Errorf("seed: copy %s: %w", t.name, postgres.Translate(err))
			}
			n[t.name] = c
		}
		return nil
	})
	return n, err
}

// analyze gathers the planner's statistics of the seeded tables, several
// at once, so that the first queries on them plan well.
func analyze(ctx context.Context, pool *pgxpool.Pool, workers int) error {
	sem := make(chan struct{}, min(workers, 4))
	errs := make(chan error, len(tables))
	var wg sync.WaitGroup
	for _, t := range tables {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := pool.Exec(ctx, `ANALYZE `+pgx.Identifier{t.name}.Sanitize()); err != nil {
				errs <- fmt.Errorf("seed: analyze %s: %w", t.name, postgres.Translate(err))
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
