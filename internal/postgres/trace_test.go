package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hmp/internal/postgres"
)

// recorder is a tracer a test sets: it counts what it sees.
type recorder struct{ starts, ends atomic.Int64 }

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.starts.Add(1)
	return ctx
}
func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) { r.ends.Add(1) }

func tracedPool(t testing.TB, tracer pgx.QueryTracer) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(context.Background(), cluster.NewDatabase(t), postgres.PoolConfig{MaxConns: 4, MinConns: 1, Tracer: tracer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

const (
	plainSQL = `SELECT $1::int + 1`
	namedSQL = "-- name: reports.daily\nSELECT $1::int * 2"
	badSQL   = `SELECT 1 / $1::int`
)

// lookUpTwice runs plainSQL: its label is this function's name, wherever
// the text runs later.
func lookUpTwice(ctx context.Context, pool *pgxpool.Pool) error {
	var n int
	for range 2 {
		if err := pool.QueryRow(ctx, plainSQL, 1).Scan(&n); err != nil {
			return err
		}
	}
	return nil
}

func TestTracerLabelsStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tracer := postgres.NewTracer(postgres.TracerConfig{})
	rec := &recorder{}
	pool := tracedPool(t, postgres.Chain(rec, tracer))
	reg := prometheus.NewRegistry()
	reg.MustRegister(tracer)

	if err := lookUpTwice(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, namedSQL, 2).Scan(&n); err != nil || n != 4 {
		t.Fatalf("named query: %d, %v", n, err)
	}
	if err := pool.QueryRow(ctx, badSQL, 0).Scan(&n); err == nil {
		t.Fatal("division by zero succeeded")
	}

	for sql, want := range map[string]string{plainSQL: "postgres_test.lookUpTwice", namedSQL: "reports.daily", badSQL: "postgres_test.TestTracerLabelsStatements"} {
		if got, ok := tracer.Label(sql); !ok || got != want {
			t.Errorf("label of %q = %q, %v; want %q", sql, got, ok, want)
		}
	}
	if got := counter(t, reg, "hmp_db_query_errors_total", "postgres_test.TestTracerLabelsStatements"); got != 1 {
		t.Errorf("errors of the failing statement = %v, want 1", got)
	}
	count, err := testutil.GatherAndCount(reg, "hmp_db_query_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if count < 3 {
		t.Errorf("hmp_db_query_seconds has %d label series, want the 3 statements", count)
	}
	if !histogramCount(t, reg, "postgres_test.lookUpTwice", 2) {
		t.Error("hmp_db_query_seconds{label=postgres_test.lookUpTwice} did not count 2 executions")
	}
	// The tracer the configuration had keeps seeing every statement.
	if rec.starts.Load() < 4 || rec.starts.Load() != rec.ends.Load() {
		t.Errorf("the chained recording tracer saw %d starts, %d ends", rec.starts.Load(), rec.ends.Load())
	}
	if len(tracer.Slowest()) != 0 {
		t.Errorf("statements under the 200 ms default were kept as slow: %+v", tracer.Slowest())
	}
}

func counter(t *testing.T, g prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

func histogramCount(t *testing.T, g prometheus.Gatherer, label string, want uint64) bool {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hmp_db_query_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetHistogram().GetSampleCount() == want
				}
			}
		}
	}
	return false
}

func TestChainKeepsExisting(t *testing.T) {
	t.Parallel()
	tracer := postgres.NewTracer(postgres.TracerConfig{})
	if postgres.Chain(nil, tracer) != pgx.QueryTracer(tracer) {
		t.Error("Chain(nil, t) is not t")
	}
	rec := &recorder{}
	if postgres.Chain(rec, nil) != pgx.QueryTracer(rec) {
		t.Error("Chain(t, nil) is not t")
	}
	both := postgres.Chain(rec, tracer)
	ctx := both.TraceQueryStart(context.Background(), nil, pgx.TraceQueryStartData{SQL: "SELECT 42"})
	both.TraceQueryEnd(ctx, nil, pgx.TraceQueryEndData{})
	if rec.ends.Load() != 1 {
		t.Error("the existing tracer was not called")
	}
	if _, ok := tracer.Label("SELECT 42"); !ok {
		t.Error("the added tracer was not called")
	}
}

// BenchmarkTracer runs one small statement through a pool without and
// with the tracer, side by side: the tracer's cost per statement.
func BenchmarkTracer(b *testing.B) {
	for _, c := range []struct {
		name   string
		tracer pgx.QueryTracer
	}{{"off", nil}, {"on", postgres.NewTracer(postgres.TracerConfig{})}} {
		b.Run(c.name, func(b *testing.B) {
			pool := tracedPool(b, c.tracer)
			ctx := context.Background()
			var n int
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := pool.QueryRow(ctx, plainSQL, i).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTracerHooks is the tracer's own work per statement, without a
// database: the label cache hit, the context value, the histogram.
func BenchmarkTracerHooks(b *testing.B) {
	tracer := postgres.NewTracer(postgres.TracerConfig{})
	data := pgx.TraceQueryStartData{SQL: plainSQL, Args: []any{1}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c := tracer.TraceQueryStart(ctx, nil, data)
		tracer.TraceQueryEnd(c, nil, pgx.TraceQueryEndData{})
	}
}
