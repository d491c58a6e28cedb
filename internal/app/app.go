// Package app wires HMP together: configuration to services to a running
// HTTP server, and back down on stop. cmd/hmp and the end-to-end tests
// drive the same Start.
package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"hmp/internal/auth"
	"hmp/internal/bus"
	"hmp/internal/cache"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/httpapi"
	"hmp/internal/idempotency"
	"hmp/internal/operator"
	"hmp/internal/postgres"
	"hmp/internal/reconcile"
	"hmp/internal/replicas"
	"hmp/internal/reports"
	"hmp/internal/telemetry"
	"hmp/internal/telemetry/dashboard"
	"hmp/internal/tenancy"
)

// Migrations lists every package's schema in dependency order.
func Migrations() []postgres.MigrationSet {
	return []postgres.MigrationSet{
		tenancy.Migrations(),
		eventstore.Migrations(),
		finance.Migrations(),
		idempotency.Migrations(),
		reports.Migrations(),
		reconcile.Migrations(),
	}
}

// Migrate applies every package's pending migrations to the database at
// url.
func Migrate(ctx context.Context, url string, logger *slog.Logger) error {
	pool, err := postgres.Open(ctx, url, postgres.PoolConfig{MaxConns: 2, MinConns: 1})
	if err != nil {
		return err
	}
	defer pool.Close()
	return postgres.Migrate(ctx, pool, logger, Migrations()...)
}

// App is a running HMP.
type App struct {
	// Addr is the address the API listens on.
	Addr string
	// OperatorAddr is the address of the operator surface (/metrics,
	// /dashboard, /v1/admin): Addr unless Config.OperatorAddr moved it.
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
	Config Config
	// Tracer labels and times every statement of Pool (advice.go).
	Tracer *postgres.Tracer

	logger  *slog.Logger
	cfg     Config
	local   *postgres.Local
	srv     *http.Server
	opSrv   *http.Server // the operator listener's (nil: on srv)
	tenancy *tenancy.Service
	served  chan error
	closers []func()
	// afterCorrection invalidates the reports a correction made stale
	// (set by the report cache's wiring; nil: nothing cached).
	afterCorrection func(ctx context.Context, touched []reports.Touched)
	// split holds what a split role adds (roles.go); nil for role all.
	split *split
	// replicaReads turns report reads from replicas on or off live (the
	// replicas' wiring sets it; nil: no replicas, the knob changes nothing).
	replicaReads func(on bool)
	// reads says where report reads go (/readyz); nil where no report is
	// read.
	reads func() string
	// dash is the operator dashboard (nil without an operator token).
	dash *dashboard.Dashboard
	// guard checks the operator token (operator.go).
	guard *operator.Guard
}

// OpenDatabase returns the database URL to use: cfg.DatabaseURL, or the
// private cluster it starts under cfg.DataDir (returned so the caller can
// stop it).
func OpenDatabase(ctx context.Context, cfg Config, logger *slog.Logger) (string, *postgres.Local, error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, nil, nil
	}
	dir := filepath.Join(cfg.DataDir, "postgres")
	if err := postgres.Reachable(dir); err != nil {
		// Run as root from a folder the postgres user cannot enter (say
		// under /root): keep the cluster where it can, one per data dir.
		abs, _ := filepath.Abs(cfg.DataDir)
		sum := sha256.Sum256([]byte(abs))
		alt := filepath.Join("/var/lib/hmp", hex.EncodeToString(sum[:6]), "postgres")
		logger.Warn("embedded_postgres_relocated", "reason", err.Error(), "dir", alt)
		dir = alt
	}
	local, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: dir, BinDir: cfg.PostgresBinDir, Settings: cfg.PostgresSettings, Logger: logger})
	if err != nil {
		return "", nil, fmt.Errorf("embedded postgres: %w", err)
	}
	return local.URL(), local, nil
}

// Start brings HMP up: database (embedded unless configured), migrations,
// services and the HTTP listener. Close takes it down again.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (_ *App, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if cfg.Role != RoleAll {
		return startRole(ctx, cfg, logger) // roles.go
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	var tokenFile string
	if cfg.AdminToken, tokenFile, err = adminToken(cfg); err != nil {
		return nil, err
	}
	a := &App{logger: logger, cfg: cfg, Config: cfg, served: make(chan error, 2), AdminTokenFile: tokenFile}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.DatabaseURL, a.local, err = OpenDatabase(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if a.local != nil {
		a.closers = append(a.closers, func() { _ = a.local.Stop() })
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.openPrimary(ctx, reg); err != nil { // roles.go: the split roles' too
		return nil, err
	}
	secret, err := tokenSecret(cfg)
	if err != nil {
		return nil, err
	}
	clock := cfg.Clock
	tokens, err := auth.New(secret, cfg.TokenTTL, clock)
	if err != nil {
		return nil, err
	}
	a.tenancy, err = tenancy.New(a.Pool, clock, tenancy.Config{BcryptCost: cfg.BcryptCost, ScopeMaxStale: cfg.ScopeMaxStale})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.tenancy.Close)
	if err := tokens.UseUsers(a.tenancy, 0); err != nil {
		return nil, err
	}
	fin := finance.New(a.Pool, a.tenancy, clock)
	idem := idempotency.NewStore(a.Pool, clock)
	events := eventstore.NewStore(a.Pool)

	a.Bus, err = bus.Open(ctx, bus.Config{URL: cfg.NATSURL, StoreDir: filepath.Join(cfg.DataDir, "nats"), Replicas: cfg.BusReplicas}, logger)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.Bus.Close)
	projCfg, applied := a.projection()
	if err := a.startRelay(ctx, applied, reg); err != nil {
		return nil, err
	}
	if err := a.startProjector(ctx, projCfg, reg); err != nil {
		return nil, err
	}
	if err := a.startPruner(ctx, idem, reg); err != nil {
		return nil, err
	}
	waiter := a.newWaiter(applied, events, a.Projector.Config().Durable)
	reportSvc := reports.NewService(a.Pool, a.tenancy, waiter, clock).WithCache(a.Cache).WithSnapshotEvery(cfg.SnapshotEvery)
	replicaStates, writePosition, err := a.startReplicas(ctx, reportSvc, reg)
	if err != nil {
		return nil, err
	}
	if err := a.startReconcile(ctx, fin, reportSvc, reg); err != nil {
		return nil, err
	}

	limiter, err := a.rateLimiter(cfg, reg)
	if err != nil {
		return nil, err
	}
	deps := httpapi.Deps{
		Limiter: limiter,
		Tenancy: a.tenancy, Tokens: tokens, Finance: fin, Events: events, Idempotency: idem,
		Reports:        reportSvc,
		Reconciliation: a.Reconciliation,
		Ready: func(ctx context.Context) error {
			if err := a.Pool.Ping(ctx); err != nil {
				return &httpapi.DependencyError{Name: "database", Err: err}
			}
			if err := a.Bus.Ping(ctx); err != nil {
				return &httpapi.DependencyError{Name: "bus", Err: err}
			}
			return nil
		},
		Replicas: replicaStates, WritePosition: writePosition, Reads: a.reads,
		MaxInFlight: cfg.MaxInFlight,
		Shedding:    httpapi.Shedding{MaxWait: cfg.MaxQueueWait, OrgShare: cfg.OrgShare, RequestTimeout: cfg.RequestTimeout},
		Metrics:     reg, Gatherer: reg, Logger: logger,
	}
	// The operator surface: guard, alerts, live settings, dashboard and
	// index advice, as in the split roles (roles.go).
	if err := a.startOperator(ctx, &deps, events, limiter, reg); err != nil {
		return nil, err
	}
	if err := a.listen(httpapi.New(deps)); err != nil {
		return nil, err
	}
	logger.Info("hmp_started", "addr", a.Addr, "operator_addr", a.OperatorAddr, "embedded_postgres", a.local != nil)
	return a, nil
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
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
	a.logger.Info("hmp_stopped")
}

// pipeline reports the event pipeline's progress to the consistency wait:
// per organization from PostgreSQL, and the stream-wide fallback from the
// relay's record and the projector's acknowledgement floor.
type pipeline struct {
	*reports.AppliedProgress
	events  *eventstore.Store
	bus     *bus.Bus
	durable string
}

func (p pipeline) Covered(ctx context.Context) (bool, uint64, error) { return p.events.Covered(ctx) }

func (p pipeline) AckFloor(ctx context.Context) (uint64, error) {
	return p.bus.AckFloor(ctx, bus.EventsStream, p.durable)
}

// tokenSecret returns the configured secret, or one generated once and
// kept in the data dir.
func tokenSecret(cfg Config) ([]byte, error) {
	if cfg.TokenSecret != "" {
		return []byte(cfg.TokenSecret), nil
	}
	path := filepath.Join(cfg.DataDir, "token.key")
	if b, err := os.ReadFile(path); err == nil {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	var buf [32]byte
	_, _ = rand.Read(buf[:])
	secret := hex.EncodeToString(buf[:])
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write token secret: %w", err)
	}
	return []byte(secret), nil
}
