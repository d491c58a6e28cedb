package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"hmp/internal/auth"
	"hmp/internal/bus"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/gateway"
	"hmp/internal/httpapi"
	"hmp/internal/idempotency"
	"hmp/internal/postgres"
	"hmp/internal/ratelimit"
	"hmp/internal/reports"
	"hmp/internal/rpc"
	"hmp/internal/tenancy"
)

// The roles an instance can run (Config.Role).
//
//   - all: every part in one process (the embedded default).
//   - finance: the write API (tenancy, revenues, expenses, approvals,
//     cash counts, the event history) and the outbox relay; it also
//     answers the other roles' tenancy questions over NATS.
//   - reports: the projector, the report reads, reconciliation and
//     corrections.
//   - gateway: the public HTTP entry: authentication, rate limits, load
//     shedding, and forwarding over NATS to the service owning each path.
//
// finance and reports serve no public API on their HTTP port: they take
// requests from the gateway over NATS (internal/rpc), in queue groups, so
// that any number of instances of each share the load. Their HTTP port
// serves what is per instance: /healthz, /readyz, /metrics and the
// operator API (/v1/admin: this instance's alerts, index advice on the
// database, the live settings, cluster-wide over the bus; /dashboard).
// The gateway serves its own operator API the same way; only the public
// API is forwarded. Every role checks the bearer token
// itself; the reports role and the gateway learn a token's user state, a
// property's zone and a manager's access from the finance role over NATS
// (kept for 2 s), never from tenancy's tables.
const (
	RoleAll     = "all"
	RoleFinance = "finance"
	RoleReports = "reports"
	RoleGateway = "gateway"
)

// serviceVersion is what the micro services report in discovery.
const serviceVersion = "1.0.0"

// split is what a split role holds beside the App's common parts.
type split struct {
	// Gateway forwards the requests (role gateway).
	gateway *gateway.Gateway
}

func (c Config) roleDefaults() Config {
	if c.Role == "" {
		c.Role = RoleAll
	}
	if c.BusReplicas == 0 {
		c.BusReplicas = 1
	}
	c.Gateway = c.Gateway.WithDefaults()
	return c
}

func (c Config) validateRole() error {
	var errs []error
	switch c.Role {
	case RoleAll:
		return nil
	case RoleFinance, RoleReports:
		if c.DatabaseURL == "" {
			errs = append(errs, fmt.Errorf("role %s needs a shared database: set the database URL", c.Role))
		}
	case RoleGateway:
		errs = append(errs, c.Gateway.Validate())
	default:
		return fmt.Errorf("role must be all, finance, reports or gateway, got %q", c.Role)
	}
	if c.NATSURL == "" {
		errs = append(errs, fmt.Errorf("role %s needs a shared NATS: set the NATS URL (the embedded bus is private to one process)", c.Role))
	}
	if c.TokenSecret == "" {
		errs = append(errs, fmt.Errorf("role %s needs the token secret every role shares", c.Role))
	}
	if c.BusReplicas < 1 || c.BusReplicas > 5 {
		errs = append(errs, fmt.Errorf("bus replicas must be 1..5, got %d", c.BusReplicas))
	}
	return errors.Join(errs...)
}

// startRole is Start for a split role (finance, reports or gateway).
func startRole(ctx context.Context, cfg Config, logger *slog.Logger) (_ *App, err error) {
	logger = logger.With("role", cfg.Role)
	a := &App{logger: logger, cfg: cfg, Config: cfg, served: make(chan error, 2), split: &split{}}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tokens, err := auth.New([]byte(cfg.TokenSecret), cfg.TokenTTL, cfg.Clock)
	if err != nil {
		return nil, err
	}
	var handler http.Handler
	switch cfg.Role {
	case RoleFinance:
		handler, err = a.startFinance(ctx, tokens, reg)
	case RoleReports:
		handler, err = a.startReports(ctx, tokens, reg)
	case RoleGateway:
		handler, err = a.startGateway(ctx, tokens, reg)
	}
	if err != nil {
		return nil, err
	}
	if err := a.listen(handler); err != nil {
		return nil, err
	}
	logger.Info("hmp_started", "addr", a.Addr, "operator_addr", a.OperatorAddr)
	return a, nil
}

// openStore connects to the shared database and applies the migrations
// (every role that uses the database may: goose serializes them).
func (a *App) openStore(ctx context.Context, reg *prometheus.Registry) error {
	a.DatabaseURL = a.cfg.DatabaseURL
	return a.openPrimary(ctx, reg)
}

// openPrimary connects to a.DatabaseURL through the query tracer, applies
// the migrations (a new schema gets the configured partition count) and
// exports the tracer's and the partitions' metrics on reg: Start and the
// split roles with a database.
func (a *App) openPrimary(ctx context.Context, reg *prometheus.Registry) error {
	cfg := a.cfg
	cfg.Pool.Tracer = a.traceQueries(cfg)
	var err error
	if a.Pool, err = postgres.Open(ctx, a.DatabaseURL, cfg.Pool); err != nil {
		return err
	}
	a.closers = append(a.closers, a.Pool.Close)
	if err := postgres.MigrateWith(ctx, a.Pool, a.logger, postgres.MigrateOptions{Partitions: cfg.PartitionCount()}, Migrations()...); err != nil {
		return err
	}
	reg.MustRegister(a.Tracer)
	a.startPartitionMetrics(cfg, reg, a.logger)
	return nil
}

// startOperator starts what this instance's operator API shows and adds
// it to deps: the operator guard (limiter's failures budget, or a limiter
// of its own), the alert evaluator over the instance's own metrics, the
// live settings (cluster-wide over the bus, each instance applying the
// part it runs: the limiter in the gateway, the projector, cache,
// corrections and replica reads in reports), the dashboard (with an
// operator token) and the index advice where the database is.
func (a *App) startOperator(ctx context.Context, deps *httpapi.Deps, events *eventstore.Store, limiter *ratelimit.Limiter, reg *prometheus.Registry) error {
	guard, err := a.operatorGuard(limiter, reg)
	if err != nil {
		return err
	}
	if err := a.startTelemetry(ctx, events, reg); err != nil {
		return err
	}
	live, sessions, err := a.startSettings(ctx, limiter)
	if err != nil {
		return err
	}
	deps.Operator, deps.Alerts, deps.Settings, deps.Dashboard = guard, a.Alerts, live, a.dashboard(reg, live, sessions)
	if a.Pool != nil {
		deps.IndexAdvice = a.IndexAdvice
	}
	return nil
}

func (a *App) openBus(ctx context.Context) error {
	var err error
	a.Bus, err = bus.Open(ctx, bus.Config{URL: a.cfg.NATSURL, Replicas: a.cfg.BusReplicas}, a.logger)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, a.Bus.Close)
	return nil
}

// serveRPC registers the role's micro service, last of all (calls arrive
// once everything is up) so that it is the first thing Close stops: the
// gateway's calls move to the other instances before this one winds down.
func (a *App) serveRPC(service string, handler http.Handler, tenancyFacts rpc.TenancyBackend) error {
	srv, err := rpc.NewServer(a.Bus.Conn(), service, serviceVersion, 0, a.logger)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, srv.Stop)
	if err := srv.HandleHTTP(gateway.Owned(service, handler)); err != nil {
		return err
	}
	if tenancyFacts != nil {
		return srv.HandleTenancy(tenancyFacts)
	}
	return nil
}

func (a *App) ready(ctx context.Context) error {
	if a.Pool != nil {
		if err := a.Pool.Ping(ctx); err != nil {
			return &httpapi.DependencyError{Name: "database", Err: err}
		}
	}
	if a.Bus != nil {
		if err := a.Bus.Ping(ctx); err != nil {
			return &httpapi.DependencyError{Name: "bus", Err: err}
		}
	}
	return nil
}

func (a *App) apiDeps(tokens *auth.Tokens, reg *prometheus.Registry) httpapi.Deps {
	cfg := a.cfg
	return httpapi.Deps{
		Tokens: tokens, Ready: a.ready, MaxInFlight: cfg.MaxInFlight,
		Shedding: httpapi.Shedding{MaxWait: cfg.MaxQueueWait, OrgShare: cfg.OrgShare, RequestTimeout: cfg.RequestTimeout},
		Metrics:  reg, Gatherer: reg, Logger: a.logger,
	}
}

// startFinance wires the write side: tenancy, finance, idempotency, cash
// counts and the relay.
func (a *App) startFinance(ctx context.Context, tokens *auth.Tokens, reg *prometheus.Registry) (http.Handler, error) {
	cfg, clock := a.cfg, a.cfg.Clock
	if err := a.openStore(ctx, reg); err != nil {
		return nil, err
	}
	var err error
	if a.tenancy, err = tenancy.New(a.Pool, clock, tenancy.Config{BcryptCost: cfg.BcryptCost, ScopeMaxStale: cfg.ScopeMaxStale}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.tenancy.Close)
	if err := tokens.UseUsers(a.tenancy, 0); err != nil {
		return nil, err
	}
	fin := finance.New(a.Pool, a.tenancy, clock)
	idem := idempotency.NewStore(a.Pool, clock)
	events := eventstore.NewStore(a.Pool)
	if err := a.openBus(ctx); err != nil {
		return nil, err
	}
	// The relay's recovery from a remade stream asks what the projection
	// applied (read only, as in role all).
	projCfg, applied := a.projection()
	if err := a.startRelay(ctx, applied, reg); err != nil {
		return nil, err
	}
	if err := a.startPruner(ctx, idem, reg); err != nil {
		return nil, err
	}
	// A cash count is a write whose event shares its commit: it is
	// recorded here, where the relay runs (no report is read here).
	waiter := a.newWaiter(applied, events, projCfg.WithDefaults().Durable)
	counts := reports.NewService(a.Pool, a.tenancy, waiter, clock)
	deps := a.apiDeps(tokens, reg)
	deps.Tenancy, deps.Finance, deps.Events, deps.Idempotency, deps.Reports = a.tenancy, fin, events, idem, counts
	if len(cfg.Replicas.URLs) > 0 {
		// The writes' consistency tokens carry the primary's WAL position,
		// which the reports role's replica reads wait for.
		if _, deps.WritePosition, err = a.startReplicas(ctx, nil, reg); err != nil {
			return nil, err
		}
	}
	if err := a.startOperator(ctx, &deps, events, nil, reg); err != nil {
		return nil, err
	}
	handler := httpapi.New(deps)
	if err := a.serveRPC(rpc.Finance, handler, a.tenancy); err != nil {
		return nil, err
	}
	return gateway.OpsOnly(handler), nil
}

// startReports wires the read side: projector, cache, report reads,
// reconciliation and corrections. Tenancy facts come from the finance
// role over NATS.
func (a *App) startReports(ctx context.Context, tokens *auth.Tokens, reg *prometheus.Registry) (http.Handler, error) {
	cfg, clock := a.cfg, a.cfg.Clock
	if err := a.openStore(ctx, reg); err != nil {
		return nil, err
	}
	if err := a.openBus(ctx); err != nil {
		return nil, err
	}
	remote, err := rpc.NewTenancy(a.Bus.Conn(), rpc.TenancyConfig{})
	if err != nil {
		return nil, err
	}
	if err := tokens.UseUsers(remote, 0); err != nil {
		return nil, err
	}
	projCfg, applied := a.projection()
	if err := a.startProjector(ctx, projCfg, reg); err != nil {
		return nil, err
	}
	// The consistency wait's stream-wide fallback reads the outbox's
	// publication state (eventstore, read only).
	events := eventstore.NewStore(a.Pool)
	waiter := a.newWaiter(applied, events, a.Projector.Config().Durable)
	reportSvc := reports.NewService(a.Pool, remote, waiter, clock).WithCache(a.Cache).WithSnapshotEvery(cfg.SnapshotEvery)
	replicaStates, writePosition, err := a.startReplicas(ctx, reportSvc, reg)
	if err != nil {
		return nil, err
	}
	// Reconciliation recomputes the truth from finance's approved rows
	// (finance.StreamDayTotals, read only; it needs no tenancy facts).
	truth := finance.New(a.Pool, nil, clock)
	if err := a.startReconcile(ctx, truth, reportSvc, reg); err != nil {
		return nil, err
	}
	deps := a.apiDeps(tokens, reg)
	deps.Reports, deps.Reconciliation, deps.Properties = reportSvc, a.Reconciliation, remote
	deps.Replicas, deps.WritePosition, deps.Reads = replicaStates, writePosition, a.reads
	if err := a.startOperator(ctx, &deps, events, nil, reg); err != nil {
		return nil, err
	}
	handler := httpapi.New(deps)
	if err := a.serveRPC(rpc.Reports, handler, nil); err != nil {
		return nil, err
	}
	return gateway.OpsOnly(handler), nil
}

// startGateway wires the public entry: no database, the bus (the calls
// over its connection, the live settings in its key-value store), the rate
// limiter, and the forwarding.
func (a *App) startGateway(ctx context.Context, tokens *auth.Tokens, reg *prometheus.Registry) (http.Handler, error) {
	if err := a.openBus(ctx); err != nil {
		return nil, err
	}
	nc := a.Bus.Conn()
	remote, err := rpc.NewTenancy(nc, rpc.TenancyConfig{})
	if err != nil {
		return nil, err
	}
	if err := tokens.UseUsers(remote, 0); err != nil {
		return nil, err
	}
	limiter, err := a.rateLimiter(a.cfg, reg)
	if err != nil {
		return nil, err
	}
	a.split.gateway = gateway.New(nc, a.cfg.Gateway, a.logger, reg)
	deps := a.apiDeps(tokens, reg)
	deps.Limiter, deps.Forward = limiter, a.split.gateway
	if err := a.startOperator(ctx, &deps, nil, limiter, reg); err != nil {
		return nil, err
	}
	return httpapi.New(deps), nil
}

// Kill stops the instance abruptly, as kill -9 would as far as the rest
// of the deployment can tell: its NATS connection is closed at once,
// without draining, so that calls in flight to it get no answer, its
// micro endpoints vanish from the queue groups and its unacknowledged
// messages wait out their AckWait; then what is left of it is closed.
// For tests and chaos drills.
func (a *App) Kill() {
	if a.Bus != nil && a.Bus.Conn() != nil {
		a.Bus.Conn().Close()
	}
	a.Close()
}
