package app

import (
	"context"
	"fmt"
	"log/slog"

	"hmp/internal/domain"
	"hmp/internal/finance"
	"hmp/internal/postgres"
	"hmp/internal/reconcile"
	"hmp/internal/tenancy"
)

// Reconcile runs the truth check of the cash book against the configured
// database (embedded or by URL) without serving: every daily row, monthly
// rollup and counted closing of the scope (nil org: everything) against the
// transactions. It applies pending migrations first.
func Reconcile(ctx context.Context, cfg Config, logger *slog.Logger, org, property *domain.ID) (reconcile.Reconciliation, error) {
	cfg = cfg.WithDefaults()
	url, local, err := OpenDatabase(ctx, cfg, logger)
	if err != nil {
		return reconcile.Reconciliation{}, err
	}
	if local != nil {
		defer local.Stop()
	}
	pool, err := postgres.Open(ctx, url, postgres.PoolConfig{MaxConns: 8, MinConns: 1})
	if err != nil {
		return reconcile.Reconciliation{}, err
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, logger, Migrations()...); err != nil {
		return reconcile.Reconciliation{}, err
	}
	ten, err := tenancy.New(pool, cfg.Clock, tenancy.Config{BcryptCost: cfg.BcryptCost})
	if err != nil {
		return reconcile.Reconciliation{}, err
	}
	defer ten.Close()
	rec := reconcile.NewReconciler(pool, finance.New(pool, ten, cfg.Clock))
	res, err := rec.Reconcile(ctx, org, property)
	if err != nil {
		return reconcile.Reconciliation{}, fmt.Errorf("reconcile: %w", err)
	}
	return res, nil
}
