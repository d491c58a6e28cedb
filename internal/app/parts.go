package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"hmp/internal/bus"
	"hmp/internal/cache"
	"hmp/internal/config"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/idempotency"
	"hmp/internal/postgres"
	"hmp/internal/reconcile"
	"hmp/internal/replicas"
	"hmp/internal/reports"
	"hmp/internal/tenancy"
	"hmp/internal/tools"
)

// The parts an instance is built of (a role, roles.go, is a list of
// them). Each is built once, by a constructor that takes the parts it
// needs and pushes the stop of whatever it starts on the stack, so that
// Close stops everything in reverse order of start.

// base is what every part is built with.
type base struct {
	cfg    config.Config
	logger *slog.Logger
	reg    *prometheus.Registry
	stops  *stops
}

func newBase(cfg config.Config, logger *slog.Logger, s *stops) base {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return base{cfg: cfg, logger: logger, reg: reg, stops: s}
}

// stops are the stop functions of what has started.
type stops []func()

func (s *stops) push(fns ...func()) { *s = append(*s, fns...) }

// start starts w and pushes its stop.
func (s *stops) start(ctx context.Context, w interface {
	Start(context.Context) error
	Stop()
}) error {
	if err := w.Start(ctx); err != nil {
		return err
	}
	s.push(w.Stop)
	return nil
}

// run calls every stop, last pushed first, once.
func (s *stops) run() {
	for i := len(*s) - 1; i >= 0; i-- {
		(*s)[i]()
	}
	*s = nil
}

// database is the primary (embedded unless configured): its pool traced,
// migrated (a new schema gets the configured partition count) and its
// partitions measured; and the replica router, where report reads are
// routed or replicas are configured (write tokens then carry the
// primary's WAL position).
type database struct {
	url      string
	embedded bool
	pool     *pgxpool.Pool
	tracer   *postgres.Tracer
	replicas *replicas.Router // nil: no reads routed, no replica
}

func openDatabase(ctx context.Context, b base, routeReads bool) (*database, error) {
	url, local, err := tools.OpenDatabase(ctx, b.cfg, b.logger)
	if err != nil {
		return nil, err
	}
	db := &database{url: url, embedded: local != nil}
	if local != nil {
		b.stops.push(func() { _ = local.Stop() })
	}
	db.tracer = postgres.NewTracer(postgres.TracerConfig{SlowThreshold: b.cfg.SlowQuery, Logger: b.logger})
	poolCfg := b.cfg.Pool
	poolCfg.Tracer = postgres.Chain(poolCfg.Tracer, db.tracer)
	if poolCfg.Hosts, err = startHosts(ctx, b, url); err != nil {
		return nil, err
	}
	if db.pool, err = postgres.Open(ctx, url, poolCfg); err != nil {
		return nil, err
	}
	b.stops.push(db.pool.Close)
	if err := tools.MigrateWith(ctx, db.pool, b.logger, b.cfg.PartitionCount()); err != nil {
		return nil, err
	}
	b.reg.MustRegister(db.tracer)
	startPartitionMetrics(b, db.pool)
	if routeReads || len(b.cfg.Replicas.URLs) > 0 || poolCfg.Hosts != nil {
		if db.replicas, err = startReplicas(ctx, b, db.pool, poolCfg.Hosts); err != nil {
			return nil, err
		}
	}
	return db, nil
}

func openBus(ctx context.Context, b base) (*bus.Bus, error) {
	bs, err := bus.Open(ctx, bus.Config{URL: b.cfg.NATSURL, StoreDir: filepath.Join(b.cfg.DataDir, "nats"), Replicas: b.cfg.BusReplicas}, b.logger)
	if err != nil {
		return nil, err
	}
	b.stops.push(bs.Close)
	return bs, nil
}

// progress is what PostgreSQL says of the projection, which both sides
// ask: the relay's recovery from a remade stream (what it applied) and
// the consistency wait of token reads (per organization, with the
// stream-wide fallback of the durable consumer).
type progress struct {
	// projector is the projector's configuration: applied-event records
	// outlive every copy the stream can still deliver (kept at least a day
	// longer than the stream keeps events).
	projector reports.ProjectorConfig
	applied   *reports.AppliedProgress
	events    *eventstore.Store
	waiter    *reports.Waiter
}

func newProgress(b base, db *database, bs *bus.Bus) *progress {
	projCfg := b.cfg.Projector
	projCfg.Retention = max(projCfg.Retention, bs.Retention()+24*time.Hour)
	def := projCfg.WithDefaults()
	p := &progress{projector: projCfg, events: eventstore.NewStore(db.pool),
		applied: reports.NewAppliedProgress(db.pool, b.cfg.Clock, def.Retention)}
	p.waiter = reports.NewWaiter(reports.PipelineProgress(p.applied, p.events, bs, def.Durable),
		reports.WaiterConfig{Timeout: b.cfg.ConsistencyTimeout, StreamWide: b.cfg.ConsistencyStreamWide})
	return p
}

// writeSide is the write API's services (tenancy, finance, idempotency
// with its pruner, cash counts) and the outbox relay that publishes their
// events.
type writeSide struct {
	tenancy *tenancy.Service
	finance *finance.Service
	idem    *idempotency.Store
	relay   *eventstore.Relay
}

func startWriteSide(ctx context.Context, b base, db *database, bs *bus.Bus, p *progress) (*writeSide, error) {
	cfg := b.cfg
	ten, err := tenancy.New(db.pool, cfg.Clock, tenancy.Config{BcryptCost: cfg.BcryptCost, ScopeMaxStale: cfg.ScopeMaxStale})
	if err != nil {
		return nil, err
	}
	b.stops.push(ten.Close)
	relayCfg := cfg.Relay
	if relayCfg.Rewind == nil {
		relayCfg.Rewind = p.applied.OldestUnapplied
	}
	relay := eventstore.NewRelay(db.pool, bus.NewPublisher(bs, cfg.Publish, b.logger, b.reg), relayCfg, b.logger, cfg.Clock, b.reg)
	w := &writeSide{
		tenancy: ten, relay: relay, idem: idempotency.NewStore(db.pool, cfg.Clock),
		finance: finance.New(db.pool, ten, cfg.Clock, finance.OnCommit(relay.Wake)),
	}
	if err := b.stops.start(ctx, w.relay); err != nil {
		return nil, err
	}
	return w, b.stops.start(ctx, idempotency.NewPruner(w.idem, cfg.IdempotencyPruner, b.logger, b.reg))
}

// projection is the reports projector and the report cache that its
// commits (and the corrections') invalidate.
type projection struct {
	projector  *reports.Projector
	cache      *cache.Cache                             // nil: off
	invalidate func(context.Context, []reports.Touched) // nil: nothing cached
}

func startProjection(ctx context.Context, b base, db *database, bs *bus.Bus, p *progress) (*projection, error) {
	c, err := startCache(ctx, b.cfg.Cache, bs, b.logger, b.reg)
	if err != nil {
		return nil, err
	}
	b.stops.push(c.Close)
	pr := &projection{cache: c, invalidate: invalidateAfterCommit(c, bs)}
	projCfg := p.projector
	projCfg.AfterCommit = bothAfterCommit(b.cfg.Projector.AfterCommit, pr.invalidate)
	pr.projector = reports.NewProjector(db.pool, bs, projCfg, b.logger, b.cfg.Clock, b.reg)
	return pr, b.stops.start(ctx, pr.projector)
}

// readSide is the report reads and what keeps the projection true:
// reconciliation jobs, and the correction batcher fed by the drift
// detectors (sampled report reads, the periodic sweep).
type readSide struct {
	reports     *reports.Service
	jobs        *reconcile.Jobs
	corrections *reconcile.CorrectionBatcher
	detector    *reconcile.Detector
}

// startReadSide needs the replica router (db.replicas); props answers the
// tenancy facts of report reads (tenancy, or the finance role over NATS).
func startReadSide(ctx context.Context, b base, db *database, p *progress, proj *projection, props reports.Properties) (*readSide, error) {
	cfg := b.cfg.Reconcile
	// A property counts as settled when every event of it the projector
	// can still be asked to apply has been applied.
	cfg.Window = max(cfg.Window, proj.projector.Config().Retention)
	// The truth is recomputed from finance's approved rows
	// (finance.StreamDayTotals, read only; it needs no tenancy facts).
	rec := reconcile.NewReconciler(db.pool, finance.New(db.pool, nil, b.cfg.Clock))
	r := &readSide{jobs: reconcile.NewJobs(db.pool, rec, cfg, b.logger, b.cfg.Clock)}
	b.stops.push(r.jobs.Stop)
	// Corrections make reports stale as projector batches do.
	r.corrections = reconcile.NewCorrectionBatcher(db.pool, cfg, proj.invalidate, b.logger, b.cfg.Clock, b.reg)
	if err := b.stops.start(ctx, r.corrections); err != nil {
		return nil, err
	}
	r.detector = reconcile.NewDetector(db.pool, rec, r.corrections, b.logger, b.cfg.Clock, b.reg)
	if err := b.stops.start(ctx, r.detector); err != nil {
		return nil, err
	}
	r.reports = reports.NewService(db.pool, props, p.waiter, b.cfg.Clock).WithCache(proj.cache).
		WithSnapshotEvery(b.cfg.SnapshotEvery).WithRouter(db.replicas)
	r.reports.SetSampler(r.detector.Sample)
	b.logger.Info("report_reads", "to", db.replicas.Reads(), "replicas", len(b.cfg.Replicas.URLs))
	return r, nil
}
