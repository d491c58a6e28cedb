package partitions_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/partitions"
	"hmp/internal/postgres"
	"hmp/internal/seed"
	"hmp/internal/tools"
)

var grown = []string{"transactions", "events", "idempotency_keys", "daily_cash_balances", "monthly_cash_balances", "projector_applied", "cash_counts"}

// newDatabase creates an empty database in the test cluster and migrates
// it with the given partition count (0: the unpartitioned layout).
func newDatabase(t *testing.T, name string, parts int) (string, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.Local.DatabaseURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := db.Local.DatabaseURL(name)
	pool, err := postgres.Open(ctx, url, postgres.PoolConfig{MaxConns: 8, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.MigrateWith(ctx, pool, slog.New(slog.DiscardHandler), postgres.MigrateOptions{Partitions: parts}, tools.Migrations()...); err != nil {
		t.Fatal(err)
	}
	return url, pool
}

// orgDigest is, per table and organization, the row count and the sum of
// row hashes.
func orgDigest(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range grown {
		rows, err := pool.Query(context.Background(), fmt.Sprintf(
			`SELECT org_id::text, count(*)::text || '/' || sum(hashtextextended(t::text, 0))::text FROM %s t GROUP BY 1`, table))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var org, d string
			if err := rows.Scan(&org, &d); err != nil {
				t.Fatal(err)
			}
			out[table+" "+org] = d
		}
		rows.Close()
	}
	return out
}

// TestOnlineMigrationKeepsEveryRow seeds a database in the unpartitioned
// layout, serves it, and moves it to partitions in small batches while
// an organization keeps writing through the API: afterwards every table
// is partitioned, every untouched organization's rows are exactly what
// they were, every write of the busy one is there, and reconciliation of
// the busy organization finds its cash book intact.
func TestOnlineMigrationKeepsEveryRow(t *testing.T) {
	ctx := context.Background()
	url, pool := newDatabase(t, "online_unpartitioned", 0)
	for _, table := range grown {
		var kind string
		if err := pool.QueryRow(ctx, `SELECT relkind::text FROM pg_class WHERE oid = $1::regclass`, table).Scan(&kind); err != nil || kind != "r" {
			t.Fatalf("%s: kind %q (%v), want an unpartitioned table", table, kind, err)
		}
	}
	res, err := seed.Run(ctx, pool, seed.Config{Orgs: 12, Days: 20, Seed: 7, Workers: 2, ChunkOrgs: 4, KeepAccounts: 12})
	if err != nil {
		t.Fatal(err)
	}
	busy := res.Accounts[0]
	before := orgDigest(t, pool)
	triggersBefore := map[string][]string{}
	for _, table := range grown {
		triggersBefore[table] = triggers(t, pool, table)
	}
	if len(triggersBefore["events"]) != 2 {
		t.Fatalf("events triggers before the move: %v, want the two append-only guards", triggersBefore["events"])
	}
	// A disabled trigger stays disabled.
	for _, s := range []string{
		`CREATE FUNCTION cash_counts_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
		`CREATE TRIGGER cash_counts_noop BEFORE INSERT ON cash_counts FOR EACH ROW WHEN (NEW.org_id IS NOT NULL) EXECUTE FUNCTION cash_counts_noop()`,
		`ALTER TABLE cash_counts DISABLE TRIGGER cash_counts_noop`,
		`COMMENT ON TRIGGER cash_counts_noop ON cash_counts IS 'kept: it''s a test'`,
	} {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	triggersBefore["cash_counts"] = triggers(t, pool, "cash_counts")

	env := apptest.Start(t, db, func(c *config.Config) { c.DatabaseURL = url })
	var login struct{ AccessToken string }
	env.Must(200, "POST", "/v1/auth/login", "", map[string]any{"email": busy.AdminEmail, "password": res.Password}).JSON(t, &login)
	admin := login.AccessToken
	today := time.Now().UTC().Format("2006-01-02")
	var (
		mu      sync.Mutex
		created = map[string]int64{} // id -> amount
		n       atomic.Int64
	)
	write := func() error {
		i := n.Add(1)
		body := apptest.Txn{PropertyID: busy.PropertyIDs[0], Source: "room", AmountCents: 1000 + i, PaymentMode: "cash", OccurredAt: today + "T08:00:00Z"}
		r, err := env.Send("POST", "/v1/finance/revenues", admin, body, "Idempotency-Key", fmt.Sprintf("online-%d", i))
		if err != nil || r.Status != 201 {
			return fmt.Errorf("write %d: %v %v", i, r, err)
		}
		var row apptest.Row
		r.JSON(t, &row)
		amount := row.AmountCents
		if i%3 == 0 { // and edit some
			amount += 7
			r, err = env.Send("PATCH", "/v1/finance/revenues/"+row.ID, admin, map[string]any{"amountCents": amount})
			if err != nil || r.Status != 200 {
				return fmt.Errorf("edit %d: %v %v", i, r, err)
			}
		}
		mu.Lock()
		created[row.ID] = amount
		mu.Unlock()
		return nil
	}
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				writerDone <- nil
				return
			default:
			}
			if err := write(); err != nil {
				writerDone <- err
				return
			}
		}
	}()

	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	moved, err := partitions.Migrate(ctx, sqlDB, partitions.MigrateConfig{
		Batch: 40,
		// Writes between the copy and the switch, every table: the
		// catch-up and the locked verification must carry them.
		BeforeSwitch: func(context.Context, string) error {
			for range 2 {
				if err := write(); err != nil {
					return err
				}
			}
			return nil
		},
	})
	close(stop)
	if werr := <-writerDone; werr != nil {
		t.Fatalf("a write failed during the migration: %v", werr)
	}
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if len(moved) != len(grown) {
		t.Fatalf("moved %d tables, want %d: %+v", len(moved), len(grown), moved)
	}
	for _, m := range moved {
		t.Logf("%s: %d rows in %d batches, %d caught up, %d+%d orgs verified, locked %s",
			m.Table, m.Rows, m.Batches, m.CaughtUp, m.OrgsVerified, m.OrgsVerifiedLocked, m.Locked)
		if m.Table == "transactions" && (m.CaughtUp == 0 || m.OrgsVerifiedLocked == 0 || m.Batches < 2) {
			t.Errorf("transactions: %+v, want several batches and caught-up rows verified under the lock", m)
		}
	}
	for _, table := range grown {
		var parts int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = $1::regclass`, table).Scan(&parts); err != nil || parts != 16 {
			t.Errorf("%s: %d partitions (%v), want 16", table, parts, err)
		}
	}
	// Every table keeps its triggers, as they were (the copy and its
	// catch-up deleted rows of the copy of events without tripping them).
	for _, table := range grown {
		if got, want := fmt.Sprint(triggers(t, pool, table)), fmt.Sprint(triggersBefore[table]); got != want {
			t.Errorf("%s triggers after the move:\n%s\nwant\n%s", table, got, want)
		}
	}
	var comment string
	if err := pool.QueryRow(ctx, `SELECT obj_description(oid, 'pg_trigger') FROM pg_trigger WHERE tgname = 'cash_counts_noop' AND tgrelid = 'cash_counts'::regclass`).Scan(&comment); err != nil || comment != "kept: it's a test" {
		t.Errorf("trigger comment %q (%v)", comment, err)
	}
	_, err = pool.Exec(ctx, `DELETE FROM events WHERE org_id = $1`, busy.OrgID)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Errorf("DELETE FROM events after the move: err = %v, want the append-only refusal", err)
	}
	refusesTruncate(t, pool)
	if c, err := partitions.Count(ctx, sqlDB); err != nil || c != 16 {
		t.Errorf("recorded count %d (%v), want 16", c, err)
	}

	// Every untouched organization is exactly as seeded.
	after := orgDigest(t, pool)
	for k, v := range before {
		if len(k) > 36 && k[len(k)-36:] == busy.OrgID {
			continue
		}
		if after[k] != v {
			t.Errorf("%s: %s after the migration, %s before", k, after[k], v)
		}
	}
	// Every write of the busy organization is there, as last written.
	mu.Lock()
	defer mu.Unlock()
	if len(created) < 14 { // two per table from BeforeSwitch at least
		t.Fatalf("only %d writes during the migration", len(created))
	}
	for id, amount := range created {
		var got int64
		if err := pool.QueryRow(ctx, `SELECT amount_cents FROM transactions WHERE org_id = $1 AND id = $2`, busy.OrgID, id).Scan(&got); err != nil || got != amount {
			t.Errorf("revenue %s: %d (%v), want %d", id, got, err, amount)
		}
	}
	// And the projection still agrees with the transactions (the writes
	// kept the projector busy through every switch).
	var job struct {
		ID, Status    string
		MismatchCount int
	}
	env.Must(202, "POST", "/v1/reports/reconciliation", admin, map[string]any{}).JSON(t, &job)
	deadline := time.Now().Add(time.Minute)
	for job.Status == "running" || job.Status == "" {
		if time.Now().After(deadline) {
			t.Fatal("reconciliation did not finish")
		}
		time.Sleep(50 * time.Millisecond)
		env.Must(200, "GET", "/v1/reports/reconciliation/"+job.ID, admin, nil).JSON(t, &job)
	}
	if job.Status != "done" || job.MismatchCount != 0 {
		t.Errorf("reconciliation after the migration: %+v", job)
	}
	// A second run has nothing left to do.
	again, err := partitions.Migrate(ctx, sqlDB, partitions.MigrateConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range again {
		if !m.Already {
			t.Errorf("second run moved %s again", m.Table)
		}
	}
}

// TestSeedLoadsThePartitionedLayout: the seed's COPY loaders and its index
// rebuild work on partitioned tables (the indexes it makes again cover
// every partition).
func TestSeedLoadsThePartitionedLayout(t *testing.T) {
	ctx := context.Background()
	_, pool := newDatabase(t, "seed_partitioned", 4)
	if _, err := seed.Run(ctx, pool, seed.Config{Orgs: 6, Days: 5, Workers: 2, ChunkOrgs: 2}); err != nil {
		t.Fatal(err)
	}
	var invalid, parts, rows int
	err := pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM pg_index WHERE NOT indisvalid),
		       (SELECT count(*) FROM pg_inherits WHERE inhparent = 'transactions'::regclass),
		       (SELECT count(DISTINCT tableoid) FROM transactions)`).Scan(&invalid, &parts, &rows)
	if err != nil {
		t.Fatal(err)
	}
	if invalid != 0 || parts != 4 || rows < 2 {
		t.Errorf("%d invalid indexes, %d partitions, rows in %d partitions; want 0, 4, several", invalid, parts, rows)
	}

	// The inspection agrees with the data.
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	ps, err := partitions.Inspect(ctx, sqlDB)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM transactions`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	for _, s := range partitions.Spreads(ps) {
		if s.Partitions != 4 || s.Bytes <= 0 {
			t.Errorf("%+v: want 4 partitions with bytes", s)
		}
		if s.Table == "transactions" && (s.Rows != total || s.RowsSpread < 1 || s.RowsSpread > 4) {
			t.Errorf("transactions spread %+v, want %d rows and a spread in [1, 4]", s, total)
		}
	}
	// Where an organization lives, by PostgreSQL's hash, is where its rows are.
	var org, where string
	var n int64
	err = pool.QueryRow(ctx, `SELECT org_id::text, tableoid::regclass::text, count(*) OVER (PARTITION BY org_id) FROM transactions LIMIT 1`).Scan(&org, &where, &n)
	if err != nil {
		t.Fatal(err)
	}
	homes, err := partitions.OrgHome(ctx, sqlDB, org)
	if err != nil {
		t.Fatal(err)
	}
	if len(homes) != len(grown) {
		t.Errorf("organization %s lives in %d tables' partitions, want %d: %+v", org, len(homes), len(grown), homes)
	}
	for _, h := range homes {
		if h.Table == "transactions" && (h.Partition != where || h.Rows != n) {
			t.Errorf("organization %s: %+v, want %s with %d rows", org, h, where, n)
		}
	}
	// The metrics export every partition.
	m := partitions.NewMetrics(sqlDB, slog.New(slog.DiscardHandler))
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range families {
		got[f.GetName()] = len(f.GetMetric())
	}
	want := map[string]int{"hmp_partition_rows": 4 * len(grown), "hmp_partition_bytes": 4 * len(grown), "hmp_partition_scans_total": 8 * len(grown), "hmp_partition_spread": 2 * len(grown)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d series, want %d", k, got[k], v)
		}
	}
}
