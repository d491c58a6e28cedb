package advisor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/advisor"
	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/postgres"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/tools"
)

var db *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.MainWith(m, &db, pgtest.Options{StatStatements: true}, tools.Migrations()...)
}

const operator = "operator-token-for-tests-0123456789"

// proposes reports whether rep advises an index on table leading with
// lead.
func proposes(rep *advisor.Report, table string, lead ...string) *advisor.Advice {
	for i, a := range rep.Advice {
		if a.Table != table || len(a.Columns) < len(lead) {
			continue
		}
		names := make([]string, len(lead))
		for j := range lead {
			names[j] = a.Columns[j]
		}
		if slices.Equal(names, lead) {
			return &rep.Advice[i]
		}
	}
	return nil
}

// TestAdvisorProposesDroppedIndex drops two indexes the API's workload
// needs, runs the workload, and expects the advisor to propose them back:
// the manager's daily-approval gate (a plain predicate, visible to the
// command's pg_stat_statements-only path) and the per-property list
// (optional filters, which need the tracer's argument samples: the route).
// Both layouts: transactions hash-partitioned by org_id (the default; plans
// scan partitions, the advice is on the parent) and unpartitioned.
func TestAdvisorProposesDroppedIndex(t *testing.T) {
	t.Parallel()
	for _, layout := range []struct {
		name  string
		parts int
	}{{"partitioned", 0}, {"unpartitioned", -1}} {
		// One after the other: each resets pg_stat_statements, which is
		// the server's, not a database's.
		t.Run(layout.name, func(t *testing.T) {
			advisedLayout(t, layout.parts)
		})
	}
}

// advisedLayout is TestAdvisorProposesDroppedIndex on the test template's
// schema (parts 0: partitioned) or on one created unpartitioned (parts < 0).
func advisedLayout(t *testing.T, parts int) {
	ctx := context.Background()
	rec := &recorder{}
	var url string
	if parts < 0 {
		url = unpartitioned(t)
	}
	env := apptest.Start(t, db, func(cfg *config.Config) {
		if url != "" {
			cfg.DatabaseURL = url
		}
		cfg.Pool.Tracer = rec // a tracer already set is kept beside the app's
		cfg.AdminToken = operator
		cfg.SlowQuery = time.Nanosecond // every statement is kept: the sample list is the point
		cfg.Partitions = parts
	})
	org := env.Signup("Advised Inn")
	props := make([]string, 4)
	for i := range props {
		props[i] = env.Property(org.AdminToken, fmt.Sprintf("House %d", i), "Europe/Berlin")
	}
	_, manager := env.Manager(org.AdminToken, "manager@advised.example", props[0])

	pool, err := postgres.Open(ctx, env.App.DatabaseURL, postgres.PoolConfig{MaxConns: 2, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var partitioned bool
	if err := pool.QueryRow(ctx, `SELECT relkind = 'p' FROM pg_class WHERE oid = 'transactions'::regclass`).Scan(&partitioned); err != nil {
		t.Fatal(err)
	}
	if partitioned != (parts >= 0) {
		t.Fatalf("transactions partitioned = %v with Partitions %d", partitioned, parts)
	}
	volume(t, pool, org.ID, props)

	// The workload through the API: a manager's writes (each checks the
	// daily approval gate) and per-property lists.
	for i := range 12 {
		env.Revenue(manager, apptest.Txn{PropertyID: props[0], AmountCents: int64(100 + i), PaymentMode: "cash",
			OccurredAt: time.Now().UTC().Format(time.RFC3339)})
		env.Must(200, "GET", "/v1/finance/revenues?propertyId="+props[i%len(props)]+"&limit=20", org.AdminToken, nil)
	}

	t.Run("command", func(t *testing.T) {
		rep, _, err := tools.AdviseIndexes(ctx, config.Config{DatabaseURL: env.App.DatabaseURL}, slog.New(slog.DiscardHandler), advisor.Config{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.StatStatements {
			t.Fatalf("pg_stat_statements not read: %+v", rep.Notes)
		}
		a := proposes(rep, "public.transactions", "org_id", "created_by")
		if a == nil {
			t.Fatalf("the gate's index (transactions: org_id, created_by, ...) not proposed; got %+v (notes %v)", rep.Advice, rep.Notes)
		}
		if a.CostAfter >= a.CostBefore || a.GainPercent <= 0 {
			t.Errorf("advice without a gain: %+v", a)
		}
		checkDDL(t, a, partitioned)
	})

	t.Run("route", func(t *testing.T) {
		var rep advisor.Report
		env.Must(200, "GET", "/v1/admin/index-advice", operator, nil).JSON(t, &rep)
		for _, a := range rep.Advice {
			t.Logf("advice: %s -- %s, cost %.0f -> %.0f (%.1f%%)", a.DDL, a.Label, a.CostBefore, a.CostAfter, a.GainPercent)
		}
		gate := proposes(&rep, "public.transactions", "org_id", "created_by")
		if gate == nil {
			t.Fatalf("the gate's index not proposed; got %+v (notes %v)", rep.Advice, rep.Notes)
		}
		if gate.Label != "finance.(*Service).checkGate" {
			t.Errorf("gate statement label = %q, want the tracer's finance.(*Service).checkGate", gate.Label)
		}
		list := proposes(&rep, "public.transactions", "org_id", "property_id")
		if list == nil {
			t.Fatalf("the list's index (transactions: org_id, property_id, ...) not proposed; got %+v (notes %v)", rep.Advice, rep.Notes)
		}
		if !slices.Contains(list.Columns, "kind") {
			t.Errorf("list index %v lacks kind, an equality of the list", list.Columns)
		}
	})

	t.Run("tracer", func(t *testing.T) {
		// Durations per label on /metrics; slow statements logged with
		// their label and text, never their arguments.
		metrics := env.Must(200, "GET", "/metrics", "", nil).String()
		if !strings.Contains(metrics, `hmp_db_query_seconds_count{label="finance.(*Service).checkGate"} 12`) {
			t.Errorf("/metrics lacks the gate statement's 12 executions")
		}
		var slowLines int
		for _, line := range strings.Split(env.Logs.String(), "\n") {
			if !strings.Contains(line, "msg=slow_query") {
				continue
			}
			slowLines++
			if strings.Contains(line, org.ID) || strings.Contains(line, props[0]) {
				t.Errorf("a slow_query line carries an argument: %s", line)
			}
		}
		if rec.n.Load() == 0 {
			t.Error("the tracer the configuration set saw no statement: replaced, not chained")
		}
		if slowLines == 0 {
			t.Error("no slow_query line logged under a 1 ns threshold")
		}
	})

	t.Run("operator token", func(t *testing.T) {
		env.Must(401, "GET", "/v1/admin/index-advice", "", nil)
		env.Must(401, "GET", "/v1/admin/index-advice", "wrong-token-0123456789abcdef", nil)
		env.Must(401, "GET", "/v1/admin/index-advice", org.AdminToken, nil) // a user's token is no operator's
	})

	t.Run("existing index is not proposed", func(t *testing.T) {
		if _, err := pool.Exec(ctx, `CREATE INDEX transactions_gate_again ON transactions (org_id, created_by, status)`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = pool.Exec(ctx, `DROP INDEX transactions_gate_again`) })
		rep, err := advisor.Advise(ctx, pool, advisor.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if a := proposes(rep, "public.transactions", "org_id", "created_by"); a != nil {
			t.Errorf("proposed %s although transactions_gate_again serves it", a.DDL)
		}
	})

	t.Run("advised DDL builds a valid index", func(t *testing.T) {
		rep, err := advisor.Advise(ctx, pool, advisor.Config{})
		if err != nil {
			t.Fatal(err)
		}
		a := proposes(rep, "public.transactions", "org_id", "created_by")
		if a == nil {
			t.Fatalf("the gate's index not proposed; got %+v (notes %v)", rep.Advice, rep.Notes)
		}
		for _, stmt := range a.Statements { // one at a time: CONCURRENTLY runs in no transaction
			if _, err := pool.Exec(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		name := strings.Fields(a.Statements[0])[2]
		if name == "CONCURRENTLY" {
			name = strings.Fields(a.Statements[0])[3]
		}
		t.Cleanup(func() { _, _ = pool.Exec(ctx, "DROP INDEX "+name) })
		var valid bool
		var kind string
		err = pool.QueryRow(ctx, `SELECT i.indisvalid, c.relkind::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			WHERE i.indexrelid = $1::regclass AND i.indrelid = 'transactions'::regclass`, name).Scan(&valid, &kind)
		if err != nil {
			t.Fatalf("the advised index %s on transactions: %v", name, err)
		}
		if !valid || (kind == "I") != partitioned {
			t.Errorf("index %s: valid %v, relkind %s (partitioned table %v)", name, valid, kind, partitioned)
		}
		rep, err = advisor.Advise(ctx, pool, advisor.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if again := proposes(rep, "public.transactions", "org_id", "created_by"); again != nil {
			t.Errorf("proposed %s again once built", again.DDL)
		}
	})
}

// checkDDL checks a's DDL: one CREATE INDEX CONCURRENTLY, or on a
// partitioned table the parent's index ON ONLY it, then each partition's
// built CONCURRENTLY and attached.
func checkDDL(t *testing.T, a *advisor.Advice, partitioned bool) {
	t.Helper()
	if a.DDL != strings.Join(a.Statements, ";\n") {
		t.Errorf("DDL %q is not its statements %q", a.DDL, a.Statements)
	}
	if !partitioned {
		if len(a.Statements) != 1 || !strings.HasPrefix(a.Statements[0], "CREATE INDEX CONCURRENTLY ") {
			t.Errorf("statements = %q, want one CREATE INDEX CONCURRENTLY", a.Statements)
		}
		return
	}
	if len(a.Statements) != 1+2*16 { // the default 16 partitions
		t.Fatalf("%d statements, want 33: %q", len(a.Statements), a.Statements)
	}
	if !strings.HasPrefix(a.Statements[0], "CREATE INDEX ") || !strings.Contains(a.Statements[0], " ON ONLY public.transactions (org_id, created_by") {
		t.Errorf("first statement %q, want the parent's index ON ONLY it", a.Statements[0])
	}
	for i := 1; i < len(a.Statements); i += 2 {
		if !strings.HasPrefix(a.Statements[i], "CREATE INDEX CONCURRENTLY ") || !strings.Contains(a.Statements[i], " ON public.transactions_p") {
			t.Errorf("statement %d = %q, want a partition's index built CONCURRENTLY", i, a.Statements[i])
		}
		if !strings.HasPrefix(a.Statements[i+1], "ALTER INDEX public.") || !strings.Contains(a.Statements[i+1], " ATTACH PARTITION public.transactions_p") {
			t.Errorf("statement %d = %q, want it attached", i+1, a.Statements[i+1])
		}
	}
}

// unpartitioned creates a database whose schema has the unpartitioned
// layout (the template's is partitioned) and returns its URL.
func unpartitioned(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.Local.DatabaseURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE advisor_unpartitioned TEMPLATE template0")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := db.Local.DatabaseURL("advisor_unpartitioned")
	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "CREATE EXTENSION pg_stat_statements") // as the template has it
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tools.MigrateLayout(ctx, url, slog.New(slog.DiscardHandler), 0); err != nil {
		t.Fatal(err)
	}
	return url
}

// recorder is a tracer a test sets: it counts statements.
type recorder struct{ n atomic.Int64 }

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestAdviseWithoutHypoPG: a database where hypopg is neither created nor
// creatable (a plain role) gets a clear error, not a crash.
func TestAdviseWithoutHypoPG(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, err := postgres.Open(ctx, db.Local.DatabaseURL("postgres"), postgres.PoolConfig{MaxConns: 1, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, sql := range []string{
		`CREATE ROLE plain_advisee LOGIN PASSWORD 'plain-password'`,
		`CREATE DATABASE no_hypopg OWNER plain_advisee`, // from template1: no extensions
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	u, err := url.Parse(db.Local.DatabaseURL("no_hypopg"))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("plain_advisee", "plain-password")
	pool, err := postgres.Open(ctx, u.String(), postgres.PoolConfig{MaxConns: 1, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = advisor.Advise(ctx, pool, advisor.Config{})
	if !errors.Is(err, advisor.ErrNoHypoPG) || !strings.Contains(err.Error(), "postgresql-15-hypopg") {
		t.Fatalf("Advise = %v, want ErrNoHypoPG saying what to install", err)
	}
}

// volume gives the organization 30,000 rows of history from 40 other
// creators across its properties, then drops the two indexes under test.
// The rows go in by SQL: history is data, the workload is the API's.
func volume(t *testing.T, pool *pgxpool.Pool, orgID string, props []string) {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		WITH creators AS (SELECT array_agg(gen_random_uuid()) AS ids FROM generate_series(1, 40))
		INSERT INTO transactions (org_id, id, kind, property_id, source, amount_cents, currency, payment_mode,
			occurred_at, business_date, status, version, created_by, created_at, updated_by, updated_at)
		SELECT $1, gen_random_uuid(), 'revenue', ($2::uuid[])[g % array_length($2::uuid[], 1) + 1], 'room', 100 + g % 50, 'EUR', 'cash',
			now() - (g % 400) * interval '1 day', current_date - (g % 400), CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'approved' END, 1,
			c.ids[g % 40 + 1], now() - (g % 400) * interval '1 day', c.ids[g % 40 + 1], now()
		FROM generate_series(1, 30000) g, creators c`, orgID, props)
	if err != nil {
		t.Fatalf("load volume: %v", err)
	}
	for _, sql := range []string{
		`DROP INDEX transactions_pending_by_creator`,
		`DROP INDEX transactions_property_list`,
		`ANALYZE transactions`,
		`SELECT pg_stat_statements_reset()`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}
