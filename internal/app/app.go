// Package app wires HMP together: configuration to services to a running
// HTTP server, and back down on stop. cmd/hmp and the end-to-end tests
// drive the same Start.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/bus"
	"hmp/internal/cache"
	"hmp/internal/config"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
	"hmp/internal/reconcile"
	"hmp/internal/replicas"
	"hmp/internal/reports"
	"hmp/internal/telemetry"
)

// App is a running HMP.
type App struct {
	// Addr is the address the API listens on.
	Addr string
	// OperatorAddr is the address of the operator surface (/metrics,
	// /dashboard, /v1/admin): Addr unless config.Config.OperatorAddr moved it.
	OperatorAddr string
	// AdminTokenFile is the file holding the operator token when it was
	// generated (no HMP_ADMIN_TOKEN, role all); empty otherwise.
	AdminTokenFile string
	// DatabaseURL is the database in use (the embedded one's when started).
	DatabaseURL string
	// Pool is the primary's connection pool.
	Pool *pgxpool.Pool
	// Bus, Relay and Projector are the event pipeline.
	Bus       *bus.Bus
	Relay     *eventstore.Relay
	Projector *reports.Projector
	// Reconciliation runs reconciliations in the background;
	// Corrections repairs the drift its detectors find.
	Reconciliation *reconcile.Jobs
	Corrections    *reconcile.CorrectionBatcher
	Detector       *reconcile.Detector
	// Alerts evaluates the alert rules (see telemetry.go).
	Alerts *telemetry.Evaluator
	// Cache is the report cache (nil when off).
	Cache *cache.Cache
	// Replicas routes report reads to read replicas or the primary.
	Replicas *replicas.Router
	// Config is the configuration in effect, defaults filled.
	Config config.Config
	// Tracer labels and times every statement of Pool (advice.go).
	Tracer *postgres.Tracer
	// Handler is what the API listener serves, for benchmarks that drive
	// the whole handler stack without a network in between.
	Handler http.Handler

	logger *slog.Logger
	cfg    config.Config
	srv    *http.Server
	opSrv  *http.Server // the operator listener's (nil: on srv)
	served chan error
	stops  stops
}

// Start brings HMP up: the parts of the configured role (roles.go), each
// once (database, embedded unless configured, and migrations; bus; write
// side; projection; read side; operator surface), then the edge and its
// HTTP listener. Close takes it down again.
func Start(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *App, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if cfg.Role != config.RoleAll {
		logger = logger.With("role", cfg.Role)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	var tokenFile string
	if cfg.AdminToken, tokenFile, err = cfg.OperatorToken(); err != nil {
		return nil, err
	}
	a := &App{logger: logger, cfg: cfg, Config: cfg, served: make(chan error, 2), AdminTokenFile: tokenFile}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	parts := roleParts(cfg.Role)
	b := newBase(cfg, logger, &a.stops)
	in, err := build(ctx, b, parts)
	if err != nil {
		return nil, err
	}
	a.expose(in)
	if err := a.serve(b, in, parts); err != nil {
		return nil, err
	}
	logger.Info("hmp_started", "addr", a.Addr, "operator_addr", a.OperatorAddr, "embedded_postgres", in.db != nil && in.db.embedded)
	return a, nil
}

// expose sets the App's fields from the parts it runs.
func (a *App) expose(in *instance) {
	if db := in.db; db != nil {
		a.DatabaseURL, a.Pool, a.Tracer, a.Replicas = db.url, db.pool, db.tracer, db.replicas
	}
	a.Bus, a.Alerts = in.bus, in.operator.alerts
	if in.write != nil {
		a.Relay = in.write.relay
	}
	if in.proj != nil {
		a.Projector, a.Cache = in.proj.projector, in.proj.cache
	}
	if r := in.read; r != nil {
		a.Reconciliation, a.Corrections, a.Detector = r.jobs, r.corrections, r.detector
	}
}

// Wait blocks until ctx is done or the server fails.
func (a *App) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-a.served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("http server: %w", err)
	}
}

// Close drains in-flight requests, then stops the services and the
// embedded database, in reverse order of start. Safe to call twice.
func (a *App) Close() {
	for _, srv := range []**http.Server{&a.srv, &a.opSrv} {
		if *srv == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		if err := (*srv).Shutdown(ctx); err != nil {
			a.logger.Warn("http_shutdown", "error", err.Error())
		}
		cancel()
		*srv = nil
	}
	a.stops.run()
	a.logger.Info("hmp_stopped")
}
