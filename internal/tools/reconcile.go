package tools

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"hmp/internal/config"
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
func Reconcile(ctx context.Context, cfg config.Config, logger *slog.Logger, org, property *domain.ID, fix bool) (ReconcileResult, error) {
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
	fin := finance.New(pool, ten, cfg.Clock)
	rec := reconcile.NewReconciler(pool, fin)
	if !fix {
		res, err := rec.Reconcile(ctx, org, property)
		if err != nil {
			return ReconcileResult{}, fmt.Errorf("reconcile: %w", err)
		}
		return ReconcileResult{Reconciliation: res}, nil
	}
	// The events are the record; the transactions table and the cash book
	// are both derived from them. --fix moves the cash book to the table,
	// so it first makes sure the table is the fold of the events: a row
	// changed behind the events' back would otherwise be written into the
	// reports, and `hmp rebuild` would move them back.
	if err := checkTableIsTheFold(ctx, fin, org); err != nil {
		return ReconcileResult{}, err
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

// ErrTableNotTheFold refuses a repair from a transactions table that is
// not the fold of its events.
var ErrTableNotTheFold = errors.New("transactions rows are not the fold of their events")

func checkTableIsTheFold(ctx context.Context, fin *finance.Service, org *domain.ID) error {
	var scope domain.ID
	if org != nil {
		scope = *org
	}
	_, bad, err := fin.CheckFolds(ctx, scope)
	if err != nil {
		return fmt.Errorf("reconcile --fix: check the table against the events: %w", err)
	}
	if len(bad) == 0 {
		return nil
	}
	m := bad[0].Mismatches[0]
	return fmt.Errorf("reconcile --fix refused: %w (%d organizations; first: org %s %s %s: %s); the events are the record: see `hmp verify --fold`, and repair the reports from the events with `hmp rebuild`",
		ErrTableNotTheFold, len(bad), bad[0].OrgID, m.Kind, m.ID, m.Detail)
}
