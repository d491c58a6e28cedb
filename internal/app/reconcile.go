package app

import (
	"context"
	"fmt"
	"log/slog"

	"hmp/internal/domain"
	"hmp/internal/finance"
	"hmp/internal/reconcile"
	"hmp/internal/tenancy"
)

// ReconcileResult is what `hmp reconcile` reports: the check, and with
// --fix the corrections written and the check after them.
type ReconcileResult struct {
	reconcile.Reconciliation
	// Fixed is set with --fix: the recheck after the corrections.
	Fixed *reconcile.Reconciliation
}

// Reconcile runs the truth check of the cash book against the configured
// database (embedded or by URL) without serving: every daily row, monthly
// rollup and counted closing of the scope (nil org: everything) against the
// transactions. With fix, it then corrects every mismatch found (through
// the correction batcher, in the profile's mode) and checks again. It
// applies pending migrations first.
func Reconcile(ctx context.Context, cfg Config, logger *slog.Logger, org, property *domain.ID, fix bool) (ReconcileResult, error) {
	cfg = cfg.WithDefaults()
	db, err := OpenTool(ctx, cfg, logger, ToolOptions{Conns: 8})
	if err != nil {
		return ReconcileResult{}, err
	}
	defer db.Close()
	pool := db.Pool
	ten, err := tenancy.New(pool, cfg.Clock, tenancy.Config{BcryptCost: cfg.BcryptCost})
	if err != nil {
		return ReconcileResult{}, err
	}
	defer ten.Close()
	rec := reconcile.NewReconciler(pool, finance.New(pool, ten, cfg.Clock))
	if !fix {
		res, err := rec.Reconcile(ctx, org, property)
		if err != nil {
			return ReconcileResult{}, fmt.Errorf("reconcile: %w", err)
		}
		return ReconcileResult{Reconciliation: res}, nil
	}
	rcfg := cfg.Reconcile
	rcfg.Window = max(rcfg.Window, cfg.Projector.Retention)
	rcfg.MaxQueue = max(rcfg.MaxQueue, 1<<30) // --fix queues every mismatch of the scope
	invalidate, stopAnnouncing, err := fixAnnouncer(cfg, logger)
	if err != nil {
		return ReconcileResult{}, err
	}
	defer stopAnnouncing()
	batcher := reconcile.NewCorrectionBatcher(pool, rcfg, invalidate, logger, cfg.Clock, nil)
	found, err := rec.Each(ctx, org, property, func(m reconcile.Mismatch) {
		batcher.Enqueue(reconcile.Key{OrgID: m.OrgID, PropertyID: m.PropertyID, Date: m.Date})
	})
	if err != nil {
		return ReconcileResult{}, fmt.Errorf("reconcile: %w", err)
	}
	if err := batcher.Flush(ctx); err != nil {
		return ReconcileResult{}, fmt.Errorf("reconcile --fix: %w", err)
	}
	after, err := rec.Reconcile(ctx, org, property)
	if err != nil {
		return ReconcileResult{}, fmt.Errorf("reconcile after fix: %w", err)
	}
	return ReconcileResult{Reconciliation: found, Fixed: &after}, nil
}
