package app

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/settings"
	"hmp/internal/telemetry"
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
		Guard: op.guard, Sessions: sessions, Gatherer: b.reg, Alerts: evaluatorAlerts{op.alerts}, Logger: b.logger,
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

// evaluatorAlerts shows the alert evaluator's alerts on the dashboard.
type evaluatorAlerts struct{ e *telemetry.Evaluator }

func (s evaluatorAlerts) Alerts() []dashboard.Alert {
	if s.e == nil {
		return nil
	}
	var out []dashboard.Alert
	for _, al := range s.e.Alerts() {
		out = append(out, dashboard.Alert{Name: al.Rule, Severity: al.Severity, State: al.State, Value: al.Value, Since: al.Since})
	}
	return out
}
