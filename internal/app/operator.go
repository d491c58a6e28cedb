package app

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/advisor"
	"hmp/internal/bus"
	"hmp/internal/eventstore"
	"hmp/internal/operator"
	"hmp/internal/ratelimit"
	"hmp/internal/settings"
	"hmp/internal/telemetry"
	"hmp/internal/telemetry/dashboard"
)

// operatorSurface is what this instance's operator API shows: the guard
// of the operator token, the alert evaluator over the instance's own
// metrics, the live settings (cluster-wide over the bus, each instance
// applying the part it runs), the dashboard and, where the database is,
// the index advice.
type operatorSurface struct {
	guard    *operator.Guard
	alerts   *telemetry.Evaluator
	settings *settings.Service
	dash     *dashboard.Dashboard                                        // nil without an operator token
	advice   func(ctx context.Context, top int) (*advisor.Report, error) // nil without a database
}

// startOperator starts the operator surface over the parts the role runs
// (db, events: nil without a database).
func startOperator(ctx context.Context, b base, db *database, bs *bus.Bus, events *eventstore.Store, t tunables) (*operatorSurface, error) {
	op := &operatorSurface{}
	var err error
	if op.guard, err = operatorGuard(b, t.limiter); err != nil {
		return nil, err
	}
	var pool *pgxpool.Pool
	if db != nil {
		pool, op.advice = db.pool, db.indexAdvice
	}
	if op.alerts, err = startTelemetry(ctx, b, pool, events, t.projector, bs); err != nil {
		return nil, err
	}
	live, sessions, err := startSettings(ctx, b, bs, t)
	if err != nil {
		return nil, err
	}
	op.settings = live
	op.dash = newDashboard(b, op, sessions, pool)
	return op, nil
}

// operatorGuard builds the one guard of the operator surface (the
// /v1/admin API and the dashboard share its budgets and its metric). Its
// budget of failures per address is limiter's operator_addr limit; a role
// without a limiter gets one holding only that limit (shared through
// Redis when configured).
func operatorGuard(b base, limiter *ratelimit.Limiter) (*operator.Guard, error) {
	if limiter == nil {
		var err error
		if limiter, err = limiterOf(b, map[string]ratelimit.Limit{ratelimit.OperatorAddr: b.cfg.RateLimits.OperatorPerAddr}); err != nil {
			return nil, err
		}
	}
	proxies, err := operator.ParseProxies(b.cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	return operator.New(operator.Config{Token: b.cfg.AdminToken, Limiter: limiter, Proxies: proxies, Registerer: b.reg, Logger: b.logger}), nil
}
