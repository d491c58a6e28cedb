package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/bus"
	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/reconcile"
	"hmp/internal/reports"
)

// The guide scenario: the scaling guide's results table measured in one
// run. A seeded database is cloned once per profile (CREATE DATABASE ...
// TEMPLATE), so that no profile sees another's writes, and on its clone
// each profile runs the existing scenarios at a small size: corrections
// through the correction batcher, the mixed Zipf load at one offered rate
// (response times, cache hit rate, freshness), the writes closed loop,
// and the projection backlog drain. The machine's limits (pgbench's
// two-insert commit and a bare net/http JSON endpoint) are measured in the
// same run.

// GuideSchema names the JSON schema of GuideReport; it changes only when a
// field changes meaning or disappears.
const GuideSchema = "hmp.loadtest.guide/v1"

// GuideProfile is one scaling profile's knobs that the guide's figures
// depend on outside the API it starts (config.LookupProfile has them).
type GuideProfile struct {
	Name      string
	Pool      postgres.PoolConfig
	Projector reports.ProjectorConfig
	// Corrections is the correction mode: reconcile.ModeRow or ModeBatch.
	Corrections string
	// CacheEntries is the report cache's capacity (entries).
	CacheEntries int
}

// GuideConfig sets up a guide run. Zero values mean the defaults.
type GuideConfig struct {
	// TemplateURL is a migrated database seeded with Orgs organizations
	// (package seed); nothing may be connected to it during the run, and
	// its user must be allowed to create and drop databases. The run
	// never writes to it. Required.
	TemplateURL string
	// Profiles are measured in order, each on a clone of its own; the
	// first is the reference of every ratio. Required.
	Profiles []GuideProfile
	// StartAPI starts an HMP with the named profile on databaseURL and
	// returns its base URL (loopback) and how to stop it. Its login and
	// signup budgets must be off: one address logs in every
	// organization. Required.
	StartAPI func(ctx context.Context, profile, databaseURL string) (baseURL string, stop func(), err error)
	// Orgs and Days describe the seeded data set; Password, AdminEmail
	// and ManagerEmail its users (seed.AdminEmail, seed.ManagerEmail).
	// Required but Days (default 30).
	Orgs, Days               int
	Password                 string
	AdminEmail, ManagerEmail func(i int) string
	// Dir receives scratch files (pgbench logs, the projection's
	// JetStream stores). Required.
	Dir string
	// PgbenchBinDir holds pgbench; empty: looked up in $PATH.
	PgbenchBinDir string
	// Rate is the mixed load's offered rate, the same for every profile.
	// Default 200 requests/s.
	Rate float64
	// Warmup precedes and Duration is every measured load phase.
	// Defaults 2 s and 10 s; Warmup negative: none.
	Warmup, Duration time.Duration
	// Events is the projection backlog per profile. Default 50,000.
	Events int
	// Corrections is how many drifted daily rows each profile corrects.
	// Default 1,000.
	Corrections int
	// WriteClients is the writes closed loop's concurrency (default 32),
	// HTTPClients the bare endpoint's (default 32). WriteOrgs is how many
	// organizations of 5 properties the writes scenario signs up for its
	// creates (default 10).
	WriteClients, HTTPClients, WriteOrgs int
	// MaxSettle bounds the wait for the machine to go quiet before a
	// phase (see Settle). Default 5 s; negative: none.
	MaxSettle time.Duration
	Logger    *slog.Logger
}

func (c GuideConfig) withDefaults() GuideConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Days, 30)
	def(&c.Events, 50_000)
	def(&c.Corrections, 1_000)
	def(&c.WriteClients, 32)
	def(&c.HTTPClients, 32)
	def(&c.WriteOrgs, 10)
	if c.Rate <= 0 {
		c.Rate = 200
	}
	switch {
	case c.Warmup == 0:
		c.Warmup = 2 * time.Second
	case c.Warmup < 0:
		c.Warmup = 0
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.MaxSettle == 0 {
		c.MaxSettle = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem of a resolved c's settings (see
// validate.go); the database, the API starter and the data set are
// Guide's to check.
func (c GuideConfig) Validate() error {
	var errs []error
	positive(&errs, "days", c.Days)
	positive(&errs, "duration", c.Duration)
	notNegative(&errs, "warmup", c.Warmup)
	positive(&errs, "rate", c.Rate)
	if len(c.Profiles) == 0 {
		errs = append(errs, errors.New("guide: at least one profile is required"))
	}
	seen := map[string]bool{}
	for _, p := range c.Profiles {
		if seen[p.Name] || consumerName(p.Name) != p.Name || p.Name == "" {
			errs = append(errs, fmt.Errorf("guide: profile names must be distinct letters, digits, - or _, got %q", p.Name))
		}
		seen[p.Name] = true
		if p.Corrections != reconcile.ModeRow && p.Corrections != reconcile.ModeBatch {
			errs = append(errs, fmt.Errorf("guide: profile %s: corrections mode %q", p.Name, p.Corrections))
		}
	}
	return errors.Join(errs...)
}

// wired reports what c lacks to run: the template database, the API
// starter, the scratch folder and the seeded data set.
func (c GuideConfig) wired() error {
	var errs []error
	if c.TemplateURL == "" || c.StartAPI == nil || c.Dir == "" {
		errs = append(errs, errors.New("guide: a template database, an API starter and a scratch folder are required"))
	}
	if c.Orgs < 1 || c.Password == "" || c.AdminEmail == nil || c.ManagerEmail == nil {
		errs = append(errs, errors.New("guide: the seeded data set (orgs, password, emails) is required"))
	}
	return errors.Join(errs...)
}

// GuideReport is a guide run: the machine's limits, every profile's
// figures, their ratios to the first profile, and the guide's claims
// beside them. Its JSON form is schema GuideSchema.
type GuideReport struct {
	Schema    string            `json:"schema"`
	StartedAt time.Time         `json:"startedAt"`
	Host      Host              `json:"host"`
	Server    map[string]string `json:"server,omitempty"`
	Durable   bool              `json:"durable"`
	Params    []Param           `json:"params"`
	Limits    GuideLimits       `json:"limits"`
	// Order is the profiles in the order they ran; the first is the
	// reference.
	Order    []string                        `json:"order"`
	Profiles map[string]*GuideProfileFigures `json:"profiles"`
	Ratios   GuideRatios                     `json:"ratios"`
	Claims   []GuideClaim                    `json:"claims"`
	Notes    []string                        `json:"notes,omitempty"`
}

// GuideLimits are what the machine does without HMP, in the same run.
type GuideLimits struct {
	// PgbenchTps is pgbench's two-insert commit (the row and the event of
	// a create) per second on a clone of the data set.
	PgbenchTps   float64 `json:"pgbenchTps"`
	PgbenchP99Ms float64 `json:"pgbenchP99Ms"`
	// BareHTTPRps is a bare net/http JSON endpoint's answers per second
	// to the same client and closed loop as the API's.
	BareHTTPRps   float64 `json:"bareHttpRps"`
	BareHTTPP99Ms float64 `json:"bareHttpP99Ms"`
}

// GuideProfileFigures are one profile's figures (latencies in ms).
type GuideProfileFigures struct {
	// EventsPerSecond is the projector's backlog drain; EventsExact says
	// the projection matched the backlog to the cent.
	EventsPerSecond float64 `json:"eventsPerSecond"`
	EventsExact     bool    `json:"eventsExact"`
	// CorrectionsPerSecond is drifted daily rows repaired per second by
	// the correction batcher in CorrectionMode.
	CorrectionsPerSecond float64 `json:"correctionsPerSecond"`
	CorrectionMode       string  `json:"correctionMode"`
	Corrections          int     `json:"corrections"`
	// CacheEntries is the report cache's capacity; CacheHitRate its hit
	// rate over the mixed load, ReadsPerSecond the reads it served.
	CacheEntries   int     `json:"cacheEntries"`
	CacheHitRate   float64 `json:"cacheHitRate"`
	ReadsPerSecond float64 `json:"readsPerSecond"`
	// OfferedRate is the mixed load's rate; OKPerSecond and Failed its
	// answers (a budget's 429 counts as failed).
	OfferedRate float64 `json:"offeredRate"`
	OKPerSecond float64 `json:"okPerSecond"`
	Failed      uint64  `json:"failed"`
	// P50Ms and P99Ms are per operation of the mixed load, plus "all",
	// "reads" and "writes".
	P50Ms map[string]float64 `json:"p50Ms"`
	P99Ms map[string]float64 `json:"p99Ms"`
	// WritesPerSecond is the writes closed loop's creates answered 201
	// per second; WritesFailed the others.
	WritesPerSecond float64 `json:"writesPerSecond"`
	WritesP99Ms     float64 `json:"writesP99Ms"`
	WritesFailed    uint64  `json:"writesFailed"`
	// FreshnessP99Ms is write to visible in the daily report, end to end,
	// under the mixed load; FreshnessProbes the probes that showed.
	FreshnessP99Ms  float64 `json:"freshnessP99Ms"`
	FreshnessProbes uint64  `json:"freshnessProbes"`
}

// GuideRatios compare every profile with the first (Order[0]).
type GuideRatios struct {
	// EventCapacity is events/s over the reference's.
	EventCapacity map[string]float64 `json:"eventCapacity"`
	// Corrections is the last profile's corrections/s over the
	// reference's (batched over row by row when they are baseline and a
	// later phase); CorrectionsByProfile the same for every profile.
	Corrections          float64            `json:"corrections"`
	CorrectionsByProfile map[string]float64 `json:"correctionsByProfile"`
	// ResponseTimeReduction is 1 − p99/p99(reference) over all requests
	// of the mixed load (0.5: half the reference's); ...P50 the same at
	// the median. The reference itself is absent.
	ResponseTimeReduction    map[string]float64 `json:"responseTimeReduction"`
	ResponseTimeReductionP50 map[string]float64 `json:"responseTimeReductionP50"`
	// WritesToPgbench is writes/s over pgbench tps.
	WritesToPgbench map[string]float64 `json:"writesToPgbench"`
}

// GuideClaim is one claim of the scaling guide beside what was measured.
type GuideClaim struct {
	Name    string  `json:"name"`
	Profile string  `json:"profile"`
	Claim   float64 `json:"claim"`
	// Unit is "x" (times the reference) or "%" (lower than the
	// reference); Measured is in the same unit.
	Unit     string  `json:"unit"`
	Measured float64 `json:"measured"`
	Met      bool    `json:"met"`
}

// guideClaims are the guide's promises per profile.
var guideClaims = []struct {
	name, profile, unit string
	claim               float64
}{
	{"event processing capacity", "phase1", "x", 25}, {"event processing capacity", "phase2", "x", 50},
	{"event processing capacity", "phase3", "x", 250},
	{"auto-correction efficiency", "", "x", 100},
	{"response time lower (p99)", "phase1", "%", 50}, {"response time lower (p99)", "phase2", "%", 80},
	{"response time lower (p99)", "phase3", "%", 90},
}

// Guide runs the guide scenario and returns its report.
func Guide(ctx context.Context, cfg GuideConfig) (*GuideReport, error) {
	cfg = cfg.withDefaults()
	if err := errors.Join(cfg.Validate(), cfg.wired()); err != nil {
		return nil, err
	}
	rep := &GuideReport{Schema: GuideSchema, StartedAt: time.Now().UTC(), Host: ThisHost(), Profiles: map[string]*GuideProfileFigures{}}
	names := make([]string, len(cfg.Profiles))
	for i, p := range cfg.Profiles {
		names[i] = p.Name
	}
	rep.Params = []Param{{"orgs", strconv.Itoa(cfg.Orgs)}, {"days", strconv.Itoa(cfg.Days)}, {"profiles", strings.Join(names, ",")},
		{"rate", strconv.FormatFloat(cfg.Rate, 'f', -1, 64)}, {"warmup", cfg.Warmup.String()}, {"duration", cfg.Duration.String()},
		{"events", strconv.Itoa(cfg.Events)}, {"corrections", strconv.Itoa(cfg.Corrections)},
		{"write-clients", strconv.Itoa(cfg.WriteClients)}, {"http-clients", strconv.Itoa(cfg.HTTPClients)}}
	settings, err := ServerSettings(ctx, cfg.TemplateURL)
	if err != nil {
		return nil, err
	}
	rep.Server, rep.Durable = settings, Durable(settings)
	g := &guideRun{cfg: cfg, postmaster: PostmasterPID(ctx, cfg.TemplateURL)}

	if err := g.limits(ctx, rep); err != nil {
		return nil, err
	}
	for _, p := range cfg.Profiles {
		f, err := g.profile(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("guide: profile %s: %w", p.Name, err)
		}
		rep.Order = append(rep.Order, p.Name)
		rep.Profiles[p.Name] = f
	}
	rep.Ratios, rep.Claims = guideRatios(rep)
	rep.Notes = append(rep.Notes, g.notes...)
	rep.Notes = append(rep.Notes,
		"each profile ran on its own clone of the seeded database (CREATE DATABASE ... TEMPLATE): no profile saw another's writes; every clone has the seed's partition layout, whatever the profile's",
		"generator, API, projector and PostgreSQL share this machine: compare ratios from one run, not absolute figures across runs")
	if !rep.Durable {
		rep.Notes = append(rep.Notes, "the server does not make commits durable: these figures are not the durable ones")
	}
	return rep, nil
}

// guideRun is the state a run's phases share.
type guideRun struct {
	cfg        GuideConfig
	postmaster int
	notes      []string
}

func (g *guideRun) settle(next string) {
	if g.cfg.MaxSettle < 0 {
		return
	}
	waited := Settle(context.Background(), g.postmaster, g.cfg.MaxSettle)
	g.cfg.Logger.Info("loadtest_settled", "before", next, "waited", waited.Round(time.Millisecond).String())
}

// maxSettle is what the scenarios reused here take for "no wait".
func (g *guideRun) maxSettle() time.Duration {
	if g.cfg.MaxSettle < 0 {
		return -1
	}
	return g.cfg.MaxSettle
}

// clone creates database name from the template and returns its URL and
// how to drop it.
func (g *guideRun) clone(ctx context.Context, name string) (string, func(), error) {
	u, err := url.Parse(g.cfg.TemplateURL)
	if err != nil {
		return "", nil, fmt.Errorf("template url: %w", err)
	}
	template := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return "", nil, fmt.Errorf("clone %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ident := pgx.Identifier{name}.Sanitize()
	start := time.Now()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", nil, fmt.Errorf("clone %s: %w", name, err)
	}
	// A large data set is copied file by file after a checkpoint
	// (FILE_COPY) rather than logged block by block to the WAL; a small
	// one is cheaper logged (no checkpoint of the whole cluster).
	var size int64
	if err := conn.QueryRow(ctx, `SELECT pg_database_size($1)`, template).Scan(&size); err != nil {
		return "", nil, fmt.Errorf("clone %s: %w", name, err)
	}
	strategy := "WAL_LOG"
	if size > 1<<30 {
		strategy = "FILE_COPY"
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE "+pgx.Identifier{template}.Sanitize()+" STRATEGY "+strategy); err != nil {
		return "", nil, fmt.Errorf("clone %s from %s (is something connected to it?): %w", name, template, err)
	}
	g.cfg.Logger.Info("guide_cloned", "database", name, "strategy", strategy, "bytes", size, "took", time.Since(start).Round(time.Millisecond).String())
	c := *u
	c.Path = "/" + name
	drop := func() {
		ctx := context.WithoutCancel(ctx)
		conn, err := pgx.Connect(ctx, admin.String())
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
			conn.Close(ctx)
		}
		if err != nil {
			g.cfg.Logger.Warn("guide_drop_failed", "database", name, "error", err.Error())
		}
	}
	return c.String(), drop, nil
}

// limits measures pgbench's two-insert commit on a clone, and a bare
// net/http JSON endpoint.
func (g *guideRun) limits(ctx context.Context, rep *GuideReport) error {
	cfg := g.cfg
	dbURL, drop, err := g.clone(ctx, "guide_limits")
	if err != nil {
		return err
	}
	defer drop()
	dir, err := os.MkdirTemp(cfg.Dir, "pgbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pb := Pgbench{BinDir: cfg.PgbenchBinDir, DatabaseURL: dbURL, Dir: dir, Orgs: cfg.Orgs, Properties: 5, Postmaster: g.postmaster}
	if err := pb.Prepare(ctx); err != nil {
		return err
	}
	g.settle("pgbench")
	r, err := pb.Run(ctx, cfg.Warmup, cfg.Duration)
	if err != nil {
		return err
	}
	rep.Limits.PgbenchTps, rep.Limits.PgbenchP99Ms = round2(r.Throughput), ms(r.Latency.P99)
	cfg.Logger.Info("loadtest_phase", "phase", "pgbench", "tps", int(r.Throughput))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	client, err := NewClient("http://"+ln.Addr().String(), cfg.HTTPClients, 10*time.Second)
	if err != nil {
		return err
	}
	defer client.Close()
	g.settle("bare http")
	h, err := ClosedLoop{Clients: cfg.HTTPClients, Warmup: cfg.Warmup, Duration: cfg.Duration, Want: http.StatusOK, Seed: 1, Postmaster: g.postmaster}.
		Run(ctx, func(ctx context.Context, _ *Worker) (int, error) {
			return client.Send(ctx, Request{Method: http.MethodGet, Path: "/"})
		})
	if err != nil {
		return err
	}
	rep.Limits.BareHTTPRps, rep.Limits.BareHTTPP99Ms = round2(h.Throughput), ms(h.Latency.P99)
	cfg.Logger.Info("loadtest_phase", "phase", "bare http", "rps", int(h.Throughput))
	return nil
}

// profile measures one profile on a clone of its own: corrections first
// (no API running), then the mixed load and the writes against the API,
// then the projection drain (which empties the clone's projection
// tables, so it runs last).
func (g *guideRun) profile(ctx context.Context, p GuideProfile) (*GuideProfileFigures, error) {
	cfg := g.cfg
	dbURL, drop, err := g.clone(ctx, "guide_"+p.Name)
	if err != nil {
		return nil, err
	}
	defer drop()
	f := &GuideProfileFigures{CorrectionMode: p.Corrections, CacheEntries: p.CacheEntries, OfferedRate: cfg.Rate}

	if err := g.corrections(ctx, p, dbURL, f); err != nil {
		return nil, err
	}
	if err := g.api(ctx, p, dbURL, f); err != nil {
		return nil, err
	}

	b, err := bus.Open(ctx, bus.Config{StoreDir: filepath.Join(cfg.Dir, "nats-"+p.Name)}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	prep, err := Projection(ctx, ProjectionConfig{DatabaseURL: dbURL, Bus: b,
		Profiles: []ProjectionProfile{{Name: p.Name, Pool: p.Pool, Projector: p.Projector}},
		Events:   cfg.Events, Properties: max(cfg.Orgs, min(10_000, cfg.Events/20)), Orgs: max(1, min(cfg.Orgs, 1_000)),
		Days: 7, Phases: Phases{MaxSettle: g.maxSettle(), Logger: cfg.Logger}})
	if err != nil && !errors.Is(err, ErrInexact) {
		return nil, err
	}
	f.EventsExact = err == nil
	if !f.EventsExact {
		g.notes = append(g.notes, fmt.Sprintf("%s: %v", p.Name, err))
	}
	for _, t := range prep.Totals {
		if t.Mode == projectionMode(p.Name) {
			f.EventsPerSecond = round2(t.Throughput)
		}
	}
	return f, nil
}

// corrections drifts cfg.Corrections seeded daily rows of the clone (one
// cent more cash received each), has the correction batcher repair them in
// the profile's mode, times that, and checks that no drift is left.
func (g *guideRun) corrections(ctx context.Context, p GuideProfile, dbURL string, f *GuideProfileFigures) error {
	pool, err := postgres.Open(ctx, dbURL, p.Pool)
	if err != nil {
		return err
	}
	defer pool.Close()
	keys, err := driftRows(ctx, pool, g.cfg.Corrections)
	if err != nil {
		return err
	}
	// The seed builds the cash book directly, without the projector's
	// applied-event records, and no API runs on the clone yet: every
	// event is in the projection. A settle window of a millisecond keeps
	// the batcher's check for unapplied events, over none.
	rc := reconcile.Config{Mode: p.Corrections, Window: time.Millisecond}
	since := time.Now().Add(-rc.Window)
	if found, err := reconcile.Detect(ctx, pool, keys, since); err != nil {
		return err
	} else if len(found) != len(keys) {
		return fmt.Errorf("corrections: %d drifted rows, %d detected", len(keys), len(found))
	}
	batcher := reconcile.NewCorrectionBatcher(pool, rc, nil, g.cfg.Logger, time.Now, nil)
	g.settle("corrections " + p.Name)
	start := time.Now()
	batcher.Enqueue(keys...)
	if err := batcher.Flush(ctx); err != nil {
		return err
	}
	took := time.Since(start)
	if left, err := reconcile.Detect(ctx, pool, keys, time.Now().Add(-rc.Window)); err != nil {
		return err
	} else if len(left) > 0 {
		return fmt.Errorf("corrections: %d of %d drifted rows left after the %s corrections", len(left), len(keys), p.Corrections)
	}
	f.Corrections = len(keys)
	f.CorrectionsPerSecond = round2(float64(len(keys)) / took.Seconds())
	g.cfg.Logger.Info("loadtest_phase", "phase", "corrections", "profile", p.Name, "mode", p.Corrections, "per_s", int(f.CorrectionsPerSecond))
	return nil
}

// driftRows adds a cent to the cash received of the first n daily rows
// (in key order: whole property and date ranges, as a drifted property
// looks) and returns their keys. It writes the projection directly on
// purpose: the drift is what a bug or a lost delta would leave.
func driftRows(ctx context.Context, pool *pgxpool.Pool, n int) ([]reconcile.Key, error) {
	rows, err := pool.Query(ctx, `
		UPDATE daily_cash_balances d SET cash_received = d.cash_received + 1
		FROM (SELECT org_id, property_id, business_date FROM daily_cash_balances
		      ORDER BY org_id, property_id, business_date LIMIT $1) k
		WHERE d.org_id = k.org_id AND d.property_id = k.property_id AND d.business_date = k.business_date
		RETURNING d.org_id, d.property_id, d.business_date`, n)
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	defer rows.Close()
	var keys []reconcile.Key
	for rows.Next() {
		var (
			o, pr pgtype.UUID
			d     time.Time
		)
		if err := rows.Scan(&o, &pr, &d); err != nil {
			return nil, fmt.Errorf("drift: %w", err)
		}
		keys = append(keys, reconcile.Key{OrgID: o.Bytes, PropertyID: pr.Bytes, Date: domain.DateOf(d)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("drift: the data set has no daily rows")
	}
	return keys, nil
}

// api starts the profile's API on the clone and runs the mixed load (with
// freshness probes) and the writes closed loop against it.
func (g *guideRun) api(ctx context.Context, p GuideProfile, dbURL string, f *GuideProfileFigures) error {
	cfg := g.cfg
	base, stop, err := cfg.StartAPI(ctx, p.Name, dbURL)
	if err != nil {
		return err
	}
	defer stop()
	const maxInFlight = 256
	client, err := NewClient(base, maxInFlight+cfg.WriteClients+16, 30*time.Second)
	if err != nil {
		return err
	}
	defer client.Close()
	tenants := NewSeededTenants(client, cfg.Orgs, cfg.Password, cfg.AdminEmail, cfg.ManagerEmail)
	if err := tenants.Warm(ctx, min(cfg.Orgs, 200), 8); err != nil {
		return fmt.Errorf("log in to the seeded organizations: %w", err)
	}
	run := RunID()
	probe, err := client.Signup(ctx, "Guide probe "+run, "guide-probe-"+run+"@loadtest.invalid")
	if err != nil {
		return fmt.Errorf("probe organization: %w", err)
	}
	pid, err := client.CreateProperty(ctx, probe.AdminToken, "probe")
	if err != nil {
		return fmt.Errorf("probe property: %w", err)
	}
	probe.Properties = []string{pid}

	g.settle("mixed " + p.Name)
	m, err := Mixed(ctx, MixedConfig{Client: client, Tenants: tenants, Rate: cfg.Rate, Warmup: cfg.Warmup, Duration: cfg.Duration,
		Days: cfg.Days, MaxInFlight: maxInFlight, ProbeTenant: &probe, Postmaster: g.postmaster, Logger: cfg.Logger})
	if err != nil {
		return err
	}
	f.P50Ms, f.P99Ms = map[string]float64{}, map[string]float64{}
	for _, s := range append(m.Ops, m.All, m.Reads, m.Writes) {
		f.P50Ms[s.Name], f.P99Ms[s.Name] = s.P50Ms, s.P99Ms
	}
	f.OKPerSecond, f.Failed, f.ReadsPerSecond = m.All.Throughput, m.All.Failed, m.Reads.Throughput
	if m.CacheHitRate != nil {
		f.CacheHitRate = *m.CacheHitRate
	}
	if m.Freshness != nil {
		f.FreshnessP99Ms, f.FreshnessProbes = m.Freshness.P99Ms, m.Freshness.OK
	}
	cfg.Logger.Info("loadtest_phase", "phase", "mixed", "profile", p.Name, "ok_per_s", int(f.OKPerSecond), "p99_ms", f.P99Ms["all"])

	w, err := Writes(ctx, WritesConfig{Client: client, Orgs: cfg.WriteOrgs, Properties: 5, Clients: cfg.WriteClients, Warmup: cfg.Warmup,
		Duration: cfg.Duration, Rate: -1, DatabaseURL: dbURL, Phases: Phases{MaxSettle: g.maxSettle(), Logger: cfg.Logger}})
	if err != nil {
		return err
	}
	for _, t := range w.Totals {
		if t.Mode == "closed" {
			f.WritesPerSecond, f.WritesP99Ms, f.WritesFailed = round2(t.Throughput), ms(t.Latency.P99), t.Failed
			if t.Failed > 0 {
				g.notes = append(g.notes, fmt.Sprintf("%s writes: %d creates not answered 201, e.g. %s", p.Name, t.Failed, t.FirstError))
			}
		}
	}
	if f.Failed > 0 {
		g.notes = append(g.notes, fmt.Sprintf("%s mixed load: %d requests failed (a write budget's 429 counts)", p.Name, f.Failed))
	}
	return nil
}

// guideRatios computes the ratios to the first profile and sets each
// claim of the guide beside its measured figure.
func guideRatios(rep *GuideReport) (GuideRatios, []GuideClaim) {
	r := GuideRatios{EventCapacity: map[string]float64{}, CorrectionsByProfile: map[string]float64{},
		ResponseTimeReduction: map[string]float64{}, ResponseTimeReductionP50: map[string]float64{}, WritesToPgbench: map[string]float64{}}
	if len(rep.Order) == 0 {
		return r, nil
	}
	ref := rep.Profiles[rep.Order[0]]
	for i, name := range rep.Order {
		p := rep.Profiles[name]
		r.EventCapacity[name] = ratio(p.EventsPerSecond, ref.EventsPerSecond)
		r.CorrectionsByProfile[name] = ratio(p.CorrectionsPerSecond, ref.CorrectionsPerSecond)
		r.WritesToPgbench[name] = ratio(p.WritesPerSecond, rep.Limits.PgbenchTps)
		if i > 0 {
			r.ResponseTimeReduction[name] = reduction(p.P99Ms["all"], ref.P99Ms["all"])
			r.ResponseTimeReductionP50[name] = reduction(p.P50Ms["all"], ref.P50Ms["all"])
		}
	}
	last := rep.Order[len(rep.Order)-1]
	r.Corrections = r.CorrectionsByProfile[last]

	var claims []GuideClaim
	for _, c := range guideClaims {
		gc := GuideClaim{Name: c.name, Profile: c.profile, Claim: c.claim, Unit: c.unit}
		switch {
		case c.profile == "" && len(rep.Order) > 1:
			gc.Profile, gc.Measured = last, r.Corrections
		case strings.HasPrefix(c.name, "event"):
			v, ok := r.EventCapacity[c.profile]
			if !ok || c.profile == rep.Order[0] {
				continue
			}
			gc.Measured = v
		default:
			v, ok := r.ResponseTimeReduction[c.profile]
			if !ok {
				continue
			}
			gc.Measured = round2(100 * v)
		}
		if gc.Profile == "" {
			continue
		}
		gc.Met = gc.Measured >= gc.Claim
		claims = append(claims, gc)
	}
	return r, claims
}

// reduction is 1 − v/ref, rounded to 4 places (0 when ref is 0).
func reduction(v, ref float64) float64 {
	if ref <= 0 {
		return 0
	}
	return math.Round((1-v/ref)*1e4) / 1e4
}

// WriteJSON writes r as indented JSON.
func (r *GuideReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Print writes r as the guide's table: the limits, one row per profile,
// then each claim beside its measured figure.
func (r *GuideReport) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "hmp loadtest guide   %s\n", r.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(&b, "host:     %d CPUs, GOMAXPROCS %d, %s %s/%s\n", r.Host.CPUs, r.Host.GOMAXPROCS, r.Host.GoVersion, r.Host.OS, r.Host.Arch)
	if len(r.Server) > 0 {
		durable := "NOT durable"
		if r.Durable {
			durable = "durable"
		}
		fmt.Fprintf(&b, "postgres: %s fsync=%s synchronous_commit=%s (%s)\n", r.Server["server_version"], r.Server["fsync"], r.Server["synchronous_commit"], durable)
	}
	ps := make([]string, len(r.Params))
	for i, p := range r.Params {
		ps[i] = p.Name + "=" + p.Value
	}
	fmt.Fprintf(&b, "params:   %s\n", strings.Join(ps, " "))
	fmt.Fprintf(&b, "limits:   pgbench two-insert commit %.0f tps (p99 %.2f ms); bare net/http JSON %.0f req/s (p99 %.2f ms)\n\n",
		r.Limits.PgbenchTps, r.Limits.PgbenchP99Ms, r.Limits.BareHTTPRps, r.Limits.BareHTTPP99Ms)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "profile\tevents/s\t× ref\tcorrections/s\tmode\t× ref\tcache\thit rate\treads/s\tp50 ms\tp99 ms\tp99 lower\twrites/s\t÷ pgbench\tfreshness p99 ms\t")
	for i, name := range r.Order {
		p := r.Profiles[name]
		lower := "-"
		if i > 0 {
			lower = fmt.Sprintf("%.0f%%", 100*r.Ratios.ResponseTimeReduction[name])
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.0f\t%s\t%.2f\t%d\t%.2f\t%.1f\t%.2f\t%.2f\t%s\t%.0f\t%.2f\t%.1f\t\n", name,
			p.EventsPerSecond, r.Ratios.EventCapacity[name], p.CorrectionsPerSecond, p.CorrectionMode, r.Ratios.CorrectionsByProfile[name],
			p.CacheEntries, p.CacheHitRate, p.ReadsPerSecond, p.P50Ms["all"], p.P99Ms["all"], lower,
			p.WritesPerSecond, r.Ratios.WritesToPgbench[name], p.FreshnessP99Ms)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Order) > 0 {
		b.WriteString("\np99 ms per operation at the same offered load:\n")
		ops := guideOps(r)
		ot := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(ot, "operation\t%s\t\n", strings.Join(r.Order, "\t"))
		for _, op := range ops {
			fmt.Fprintf(ot, "%s", op)
			for _, name := range r.Order {
				fmt.Fprintf(ot, "\t%.2f", r.Profiles[name].P99Ms[op])
			}
			fmt.Fprintln(ot, "\t")
		}
		if err := ot.Flush(); err != nil {
			return err
		}
	}
	if len(r.Claims) > 0 {
		b.WriteString("\nthe guide's claims beside the measured figures:\n")
		ct := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, c := range r.Claims {
			verdict := "met"
			if !c.Met {
				verdict = "NOT met"
			}
			fmt.Fprintf(ct, "  %s\t%s\tclaim %s\tmeasured %s\t%s\n", c.Name, c.Profile, claimValue(c.Claim, c.Unit), claimValue(c.Measured, c.Unit), verdict)
		}
		if err := ct.Flush(); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// guideOps lists the mixed load's operations of the reference profile,
// with all, reads and writes last.
func guideOps(r *GuideReport) []string {
	var ops []string
	for op := range r.Profiles[r.Order[0]].P99Ms {
		if op != "all" && op != "reads" && op != "writes" {
			ops = append(ops, op)
		}
	}
	slices.Sort(ops)
	return append(ops, "reads", "writes", "all")
}

func claimValue(v float64, unit string) string {
	if unit == "%" {
		return strconv.FormatFloat(v, 'f', 0, 64) + " % lower"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}
