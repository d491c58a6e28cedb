package app

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/settings"
	"hmp/internal/telemetry/dashboard"
)

// newDashboard builds the operator dashboard over the process's registry
// (nil without an operator token: the routes stay out), its logins
// checked by the operator guard and kept as sessions in the settings
// bucket. Its event streams end when the server shuts down (listen
// registers Close). pool is nil in the gateway role (no database).
func newDashboard(b base, op *operatorSurface, sessions *settings.Sessions, pool *pgxpool.Pool) *dashboard.Dashboard {
	if !op.guard.On() {
		return nil
	}
	cfg := dashboard.Config{
		Guard: op.guard, Sessions: sessions, Gatherer: b.reg, Alerts: dashboard.EvaluatorAlerts(op.alerts), Logger: b.logger,
		Settings: func() any { return op.settings.Current() },
	}
	if pool != nil {
		cfg.Pool = func() (int32, int32) {
			s := pool.Stat()
			return s.AcquiredConns(), s.MaxConns()
		}
	}
	return dashboard.New(cfg)
}
