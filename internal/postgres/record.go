package postgres

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Recorder is a pgx query tracer that keeps every distinct statement a
// pool issued with the arguments of its first few executions, so that a
// test can ask the planner about exactly what the application runs (the
// partition-pruning test EXPLAINs each). Safe for concurrent use.
type Recorder struct {
	// PerStatement bounds the argument sets kept per statement (default 4).
	PerStatement int

	mu    sync.Mutex
	order []string
	seen  map[string][][]any
}

// Recorded is one distinct statement and argument sets it ran with.
type Recorded struct {
	SQL  string
	Args [][]any
}

func (r *Recorder) record(sql string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string][][]any{}
	}
	sets, ok := r.seen[sql]
	if !ok {
		r.order = append(r.order, sql)
	}
	limit := r.PerStatement
	if limit <= 0 {
		limit = 4
	}
	if len(sets) < limit {
		r.seen[sql] = append(sets, append([]any(nil), args...))
	}
}

// Statements returns what was recorded, in first-seen order.
func (r *Recorder) Statements() []Recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Recorded, len(r.order))
	for i, s := range r.order {
		out[i] = Recorded{SQL: s, Args: r.seen[s]}
	}
	return out
}

// TraceQueryStart records the statement.
func (r *Recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.record(data.SQL, data.Args)
	return ctx
}

// TraceQueryEnd does nothing.
func (r *Recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart does nothing: the batch's statements arrive one by one.
func (r *Recorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

// TraceBatchQuery records a statement of a batch.
func (r *Recorder) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	r.record(data.SQL, data.Args)
}

// TraceBatchEnd does nothing.
func (r *Recorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
