package app

import (
	"context"

	"hmp/internal/advisor"
)

// IndexAdvice runs the index advisor on the primary with the tracer's slow
// statements and labels; top is how many statements to take from
// pg_stat_statements (0: the advisor's default).
func (a *App) IndexAdvice(ctx context.Context, top int) (*advisor.Report, error) {
	return (&database{pool: a.Pool, tracer: a.Tracer}).indexAdvice(ctx, top)
}

func (db *database) indexAdvice(ctx context.Context, top int) (*advisor.Report, error) {
	return advisor.Advise(ctx, db.pool, advisor.Config{Top: top, Samples: db.tracer.Slowest(), Labels: db.tracer.Labels()})
}
