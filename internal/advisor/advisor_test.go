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
	"hmp/internal/app"
	"hmp/internal/apptest"
	"hmp/internal/postgres"
	"hmp/internal/postgres/pgtest"
)

var db *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.MainWith(m, &db, pgtest.Options{StatStatements: true}, app.Migrations()...)
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
func TestAdvisorProposesDroppedIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := &recorder{}
	env := apptest.Start(t, db, func(cfg *app.Config) {
		cfg.Pool.Tracer = rec // a tracer already set is kept beside the app's
		cfg.AdminToken = operator
		cfg.SlowQuery = time.Nanosecond // every statement is kept: the sample list is the point
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
	volume(t, pool, org.ID, props)

	// The workload through the API: a manager's writes (each checks the
	// daily approval gate) and per-property lists.
	for i := range 12 {
		env.Revenue(manager, apptest.Txn{PropertyID: props[0], AmountCents: int64(100 + i), PaymentMode: "cash",
			OccurredAt: time.Now().UTC().Format(time.RFC3339)})
		env.Must(200, "GET", "/v1/finance/revenues?propertyId="+props[i%len(props)]+"&limit=20", org.AdminToken, nil)
	}

	t.Run("command", func(t *testing.T) {
		rep, _, err := app.AdviseIndexes(ctx, app.Config{DatabaseURL: env.App.DatabaseURL}, slog.New(slog.DiscardHandler), advisor.Config{}, 0)
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
		if want := "CREATE INDEX CONCURRENTLY "; len(a.DDL) < len(want) || a.DDL[:len(want)] != want {
			t.Errorf("DDL = %q", a.DDL)
		}
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
