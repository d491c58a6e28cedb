package app

import (
	"context"
	"log/slog"

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

// AdviseIndexes runs the index advisor against the configured database:
// hmp advise-indexes. A separate process has no tracer, so it sees only
// pg_stat_statements (generic plans of the recorded texts).
func AdviseIndexes(ctx context.Context, cfg Config, logger *slog.Logger, ac advisor.Config) (*advisor.Report, error) {
	cfg = cfg.WithDefaults()
	url, local, err := OpenDatabase(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if local != nil {
		defer local.Stop()
	}
	pool, err := postgres.Open(ctx, url, postgres.PoolConfig{MaxConns: 2, MinConns: 1})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return advisor.Advise(ctx, pool, ac)
}
