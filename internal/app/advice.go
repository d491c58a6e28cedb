package app

import (
	"context"
	"fmt"
	"log/slog"

	"hmp/internal/advisor"
	"hmp/internal/config"
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

// AdviseIndexes runs the index advisor against the configured database:
// hmp advise-indexes. A separate process has no tracer, so it sees only
// pg_stat_statements (generic plans of the recorded texts).
//
// apply > 0 then creates the first apply advised indexes (their
// CREATE INDEX CONCURRENTLY, one at a time) and returns the DDL run.
func AdviseIndexes(ctx context.Context, cfg config.Config, logger *slog.Logger, ac advisor.Config, apply int) (*advisor.Report, []string, error) {
	db, err := OpenTool(ctx, cfg, logger, ToolOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	pool := db.Pool
	rep, err := advisor.Advise(ctx, pool, ac)
	if err != nil {
		return nil, nil, err
	}
	var applied []string
	for _, a := range rep.Advice[:min(apply, len(rep.Advice))] {
		// CONCURRENTLY cannot run in a transaction: one plain statement
		// at a time (a partitioned table's index takes several).
		for _, stmt := range a.Statements {
			logger.Info("index_creating", "ddl", stmt)
			if _, err := pool.Exec(ctx, stmt); err != nil {
				return rep, applied, fmt.Errorf("apply %s: %w", stmt, err)
			}
			applied = append(applied, stmt)
		}
	}
	return rep, applied, nil
}

// ResetQueryStats empties pg_stat_statements of the configured database's
// server (hmp advise-indexes --reset): advice after a workload then
// reflects that workload, not a seed's loads.
func ResetQueryStats(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	db, err := OpenTool(ctx, cfg, logger, ToolOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return advisor.ResetStats(ctx, db.Pool)
}
