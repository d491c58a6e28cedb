package app

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/settings"
	"hmp/internal/telemetry/dashboard"
)

// dashboard builds the operator dashboard over the process's registry
// (nil without an operator token: the routes stay out). Its event streams
// end when the server shuts down (Start registers Close).
func (a *App) dashboard(reg prometheus.Gatherer, live *settings.Service) http.Handler {
	if a.cfg.AdminToken == "" {
		return nil
	}
	a.dash = dashboard.New(dashboard.Config{
		Token: a.cfg.AdminToken, Gatherer: reg, Alerts: a.cfg.Alerts, Logger: a.logger,
		Settings: func() any { return live.Current() },
		Pool: func() (int32, int32) {
			s := a.Pool.Stat()
			return s.AcquiredConns(), s.MaxConns()
		},
	})
	return a.dash
}
