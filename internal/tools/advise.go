package tools

import (
	"context"
	"fmt"
	"log/slog"

	"hmp/internal/advisor"
	"hmp/internal/config"
)

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
