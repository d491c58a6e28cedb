package app

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/settings"
	"hmp/internal/telemetry"
	"hmp/internal/telemetry/dashboard"
)

// dashboard builds the operator dashboard over the process's registry
// (nil without an operator token: the routes stay out), its logins
// checked by the operator guard and kept as sessions in the settings
// bucket. Its event streams end when the server shuts down (listen
// registers Close).
func (a *App) dashboard(reg prometheus.Gatherer, live *settings.Service, sessions *settings.Sessions) http.Handler {
	if !a.guard.On() {
		return nil
	}
	cfg := dashboard.Config{
		Guard: a.guard, Sessions: sessions, Gatherer: reg, Alerts: evaluatorAlerts{a.Alerts}, Logger: a.logger,
		Settings: func() any { return live.Current() },
	}
	if a.Pool != nil { // the gateway role has no database
		cfg.Pool = func() (int32, int32) {
			s := a.Pool.Stat()
			return s.AcquiredConns(), s.MaxConns()
		}
	}
	a.dash = dashboard.New(cfg)
	return a.dash
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
