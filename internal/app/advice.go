package app

import (
	"context"

	"github.com/jackc/pgx/v5"

	"hmp/internal/advisor"
	"hmp/internal/postgres"
)

// traceQueries makes the app's query tracer (statement labels, durations
// per label, slow statements) and returns it chained after any tracer the
// configuration already has.
func (a *App) traceQueries(cfg Config) pgx.QueryTracer {
	a.Tracer = postgres.NewTracer(postgres.TracerConfig{SlowThreshold: cfg.SlowQuery, Logger: a.logger})
	return postgres.Chain(cfg.Pool.Tracer, a.Tracer)
}

// IndexAdvice runs the index advisor on the primary with the tracer's slow
// statements and labels; top is how many statements to take from
// pg_stat_statements (0: the advisor's default).
func (a *App) IndexAdvice(ctx context.Context, top int) (*advisor.Report, error) {
	return advisor.Advise(ctx, a.Pool, advisor.Config{Top: top, Samples: a.Tracer.Slowest(), Label: a.Tracer.Label})
}
