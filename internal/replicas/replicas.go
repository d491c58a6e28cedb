// Package replicas routes read-only queries to PostgreSQL streaming
// replicas. A checker measures every replica's health and lag every few
// seconds; a read goes to the healthy replica with the least lag under
// the maximum, else to the primary. A read that must reflect a write (a
// consistency token) goes only where the replica's replay position has
// reached the write's, waiting briefly for it, else to the primary.
//
// Only what is safe to serve stale goes through a Router: the report
// queries. Writes, and every read that must see its own transaction, use
// the primary's pool directly.
package replicas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// Config tunes the routing. The zero value of each field means its
// default.
type Config struct {
	// URLs are the replicas' connection strings (HMP_REPLICA_URLS). None:
	// every read goes to the primary.
	URLs []string
	// MaxLag is how stale a read without a token may be: a replica whose
	// data may be older than this is not read from. Default 5 s.
	MaxLag time.Duration
	// CheckInterval is how often each replica's health and lag are
	// measured. Default 2 s.
	CheckInterval time.Duration
	// CheckTimeout bounds one replica's check; past it the replica is
	// down. Default 1 s.
	CheckTimeout time.Duration
	// TokenWait bounds how long a read with a token waits for a replica
	// to replay up to the write before it goes to the primary. Default
	// 100 ms; negative: no wait.
	TokenWait time.Duration
	// Pool sizes each replica's pool: smaller than the primary's, which
	// still serves writes and fallbacks. Zero fields: 20 connections at
	// most, 1 kept open, then the pool defaults.
	Pool postgres.PoolConfig
	// Disabled keeps every read on the primary (replicas are still
	// checked): the rollback switch; see also Router.SetEnabled.
	Disabled bool
	// Hosts, when set, are the hosts of the primary's (multi-host) URL:
	// those its prober last found in recovery are read from as replicas,
	// beside URLs, and dropped once promoted or gone. It also gives the
	// credentials for PatroniURL's members. The caller starts and stops
	// it. Nil: no discovery.
	Hosts *postgres.Hosts
	// PatroniURL is the REST API of a Patroni member
	// (HMP_PATRONI_URL, e.g. http://10.0.0.1:8008): each check asks its
	// GET /cluster for the members, and those with role replica or
	// sync_standby in state streaming (or running) are read from, with
	// the primary URL's credentials (Hosts is required). Empty: none.
	PatroniURL string
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxLag == 0 {
		c.MaxLag = 5 * time.Second
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = 2 * time.Second
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = time.Second
	}
	if c.TokenWait == 0 {
		c.TokenWait = 100 * time.Millisecond
	}
	if c.Pool.MaxConns == 0 {
		c.Pool.MaxConns = 20
	}
	if c.Pool.MinConns == 0 {
		c.Pool.MinConns = 1
	}
	c.Pool = c.Pool.WithDefaults()
	return c
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.MaxLag < 0 || c.CheckInterval < 0 || c.CheckTimeout < 0 {
		errs = append(errs, errors.New("replica max lag, check interval and check timeout must not be negative"))
	}
	for i, u := range c.URLs {
		if _, err := pgconn.ParseConfig(u); err != nil {
			// The error text may echo the URL, password included.
			errs = append(errs, fmt.Errorf("replica url %d does not parse", i+1))
		}
	}
	if err := c.Pool.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("replica pool: %w", err))
	}
	if c.PatroniURL != "" {
		if u, err := url.Parse(c.PatroniURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("patroni url must be http(s)://host:port"))
		}
		if c.Hosts == nil {
			errs = append(errs, errors.New("patroni url needs the primary's hosts (for the members' credentials)"))
		}
	}
	return errors.Join(errs...)
}

// ParseURLs splits a comma-separated list (HMP_REPLICA_URLS), dropping
// blanks.
func ParseURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// State is a replica's condition as last measured.
type State string

const (
	// Healthy replicas answer and are within the maximum lag.
	Healthy State = "healthy"
	// Lagging replicas answer but may be older than the maximum lag.
	Lagging State = "lagging"
	// Down replicas do not answer, or are not replaying (promoted).
	Down State = "down"
)

// Status is one replica's state for operators.
type Status struct {
	// Name is "replica-<n>" (1-based, in configuration order) for
	// HMP_REPLICA_URLS, "discovered-<n>" (in order of discovery) for a
	// member found by discovery: it names no host, so it may be shown
	// publicly.
	Name  string
	State State
}

// Router sends reads to a replica or to the primary.
type Router struct {
	primary *pgxpool.Pool
	cfg     Config
	logger  *slog.Logger
	static  []*replica                 // from URLs, in configuration order
	reps    atomic.Pointer[[]*replica] // static, then discovered: read per request, replaced by checks
	dmu     sync.Mutex                 // one discovery at a time
	found   int                        // discovered members so far (their names); under dmu
	http    *http.Client
	enabled atomic.Bool
	m       metrics

	hmu     sync.Mutex
	history []sample // the primary's recent positions, oldest first

	startOnce, stopOnce sync.Once
	cancel              context.CancelFunc
	done                chan struct{}
}

// sample is the primary's position (PrimaryLSN) at a time: every
// transaction committed before at has its commit record below lsn.
type sample struct {
	lsn uint64
	at  time.Time
}

// historyLen bounds the kept samples: at the default interval, about two
// minutes, past which a replica counts as lagging anyway.
const historyLen = 64

type replica struct {
	name  string // replica-<n>
	label string // host:port, for metrics and logs (never credentials)
	addr  string // host:port of a discovered member; empty for URLs
	pool  *pgxpool.Pool

	mu         sync.Mutex
	state      State
	checked    time.Time // when the lag below was measured
	replay     uint64    // the highest replay position seen
	lagBytes   uint64
	lagSeconds float64
}

// New opens a pool per replica (connections are made when first needed:
// a replica may be away at start) and returns a Router over them and the
// primary. Until the first check every replica counts as down. Start runs
// the checks.
func New(ctx context.Context, primary *pgxpool.Pool, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Router, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Router{primary: primary, cfg: cfg, logger: logger, m: newMetrics(reg), done: make(chan struct{}),
		http: &http.Client{Timeout: cfg.CheckTimeout}}
	r.enabled.Store(!cfg.Disabled)
	for i, u := range cfg.URLs {
		pool, err := postgres.OpenLazy(ctx, u, cfg.Pool)
		if err != nil {
			r.closePools()
			return nil, fmt.Errorf("replica %d: open pool: %w", i+1, errors.New("invalid configuration"))
		}
		rep := &replica{name: "replica-" + strconv.Itoa(i+1), label: label(pool, i), pool: pool, state: Down}
		r.static = append(r.static, rep)
		r.m.healthy.WithLabelValues(rep.label).Set(0)
	}
	reps := slices.Clone(r.static)
	r.reps.Store(&reps)
	return r, nil
}

// label is host:port of the replica's first host.
func label(pool *pgxpool.Pool, i int) string {
	cc := pool.Config().ConnConfig
	if cc.Host == "" {
		return "replica-" + strconv.Itoa(i+1)
	}
	return net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port)))
}

// Start checks every replica once, then every CheckInterval in the
// background, until Stop. Safe to call twice.
func (r *Router) Start(ctx context.Context) error {
	r.startOnce.Do(func() {
		if !r.configured() {
			close(r.done) // nothing to check
			return
		}
		ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
		r.Check(ctx)
		go r.run(ctx)
	})
	return nil
}

func (r *Router) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Check(ctx)
		}
	}
}

// Stop ends the checks and closes the replica pools. Safe to call twice;
// the primary's pool is the caller's.
func (r *Router) Stop() {
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
		r.closePools()
	})
}

func (r *Router) closePools() {
	for _, rep := range *r.reps.Load() {
		rep.pool.Close()
	}
}

// configured reports whether any replica may be read from: URLs, or a
// discovery source.
func (r *Router) configured() bool {
	return len(r.static) > 0 || r.cfg.Hosts != nil || r.cfg.PatroniURL != ""
}

// SetEnabled turns replica reads on or off at once (off: every read on
// the primary), the live rollback of this stage.
func (r *Router) SetEnabled(on bool) { r.enabled.Store(on) }

// Enabled reports whether replica reads are on (SetEnabled, or the
// configuration until then).
func (r *Router) Enabled() bool { return r.enabled.Load() }

// Where report reads go, as Reads says.
const (
	// ReadsReplicas: to the healthy replica with the least lag under
	// MaxLag, else (none such) to the primary.
	ReadsReplicas = "replicas"
	// ReadsPrimaryOff: replicas are configured but replica reads are off
	// (HMP_REPLICA_READS=off, the baseline profile, or the live setting).
	ReadsPrimaryOff = "primary: replica reads off"
	// ReadsPrimaryNone: no replica is configured.
	ReadsPrimaryNone = "primary: no replica configured"
)

// Reads says where report reads go now: ReadsReplicas, ReadsPrimaryOff or
// ReadsPrimaryNone. For /readyz and the start log, so that configured
// replicas that receive no read are never a silent state.
func (r *Router) Reads() string {
	switch {
	case !r.configured():
		return ReadsPrimaryNone
	case !r.Enabled():
		return ReadsPrimaryOff
	}
	return ReadsReplicas
}

// Statuses returns every replica's last measured state, in configuration
// order.
func (r *Router) Statuses() []Status {
	reps := *r.reps.Load()
	out := make([]Status, len(reps))
	for i, rep := range reps {
		rep.mu.Lock()
		out[i] = Status{Name: rep.name, State: rep.state}
		rep.mu.Unlock()
	}
	return out
}

// Read runs fn on a replica when one may serve the read, else on the
// primary, and returns how old the data may be: zero when read as of now
// (the primary, or a replica that replayed the token's bar, which is
// later than the call), else the time before which the replica holds
// every commit. With a token (the read already waited until the
// projection reflects the write on the primary) the replica must have
// replayed the primary's position as of now: the projector commits after
// the write, so the write's own position is not enough. A read that fails
// on a replica runs again on the primary: fn must be read-only and safe
// to run twice. ctx ending stops everything.
func (r *Router) Read(ctx context.Context, token *domain.Token, fn func(db *pgxpool.Pool) error) (time.Time, error) {
	if rep, asOf := r.pick(ctx, token); rep != nil {
		err := fn(rep.pool)
		if err == nil {
			r.m.reads.WithLabelValues("replica").Inc()
			return asOf, nil
		}
		if ctx.Err() != nil {
			return time.Time{}, err
		}
		if postgres.Transient(err) && !postgres.Serialization(err) {
			// Gone mid-read: stop sending reads there until a check
			// finds it back (a recovery conflict is not a reason).
			rep.markDown()
			r.m.healthy.WithLabelValues(rep.label).Set(0)
		}
		r.logger.Warn("replica_read_failed", "replica", rep.label, "error", err.Error())
	}
	err := fn(r.primary)
	if err == nil {
		r.m.reads.WithLabelValues("primary").Inc()
	}
	return time.Time{}, err
}

// pick returns the replica to read from (nil: the primary) and how old
// its data may be (zero: as of now).
func (r *Router) pick(ctx context.Context, token *domain.Token) (*replica, time.Time) {
	reps := *r.reps.Load()
	if len(reps) == 0 || !r.enabled.Load() {
		return nil, time.Time{}
	}
	now := time.Now()
	var (
		best     *replica
		bestB    uint64
		bestAsOf time.Time
		ties     int
	)
	fresh := make([]*replica, 0, len(reps))
	for _, rep := range reps {
		rep.mu.Lock()
		ok := rep.state == Healthy && rep.lagSeconds+now.Sub(rep.checked).Seconds() <= r.cfg.MaxLag.Seconds()
		lag := rep.lagBytes
		asOf := rep.checked.Add(-time.Duration(rep.lagSeconds * float64(time.Second)))
		rep.mu.Unlock()
		if !ok {
			continue
		}
		fresh = append(fresh, rep)
		switch {
		case best == nil || lag < bestB:
			best, bestB, bestAsOf, ties = rep, lag, asOf, 1
		case lag == bestB:
			// Spread reads over replicas equally behind.
			ties++
			if rand.IntN(ties) == 0 {
				best, bestAsOf = rep, asOf
			}
		}
	}
	if best == nil {
		return nil, time.Time{}
	}
	if token == nil {
		return best, bestAsOf
	}
	bar, flushed, err := r.positions(ctx)
	if err != nil {
		return nil, time.Time{} // the primary answers the read, or fails it
	}
	bar = max(bar, token.LSN)
	if bar > flushed {
		// Not yet on the primary's disk (synchronous_commit off, or the
		// token's position from a write not flushed yet), so not yet sent:
		// no replica can have it before the WAL writer's next round,
		// later than a wait is worth.
		return nil, time.Time{}
	}
	var furthest *replica
	for _, rep := range fresh {
		replay := rep.replayed()
		if replay >= bar {
			return rep, time.Time{}
		}
		if furthest == nil || replay > furthest.replayed() {
			furthest = rep
		}
	}
	if r.cfg.TokenWait < 0 || r.awaitReplay(ctx, furthest, bar) != nil {
		return nil, time.Time{}
	}
	return furthest, time.Time{}
}

func (rep *replica) replayed() uint64 {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return rep.replay
}

func (rep *replica) markDown() {
	rep.mu.Lock()
	rep.state = Down
	rep.mu.Unlock()
}

// noteReplay records a replay position seen on rep (positions only grow).
func (rep *replica) noteReplay(lsn uint64) {
	rep.mu.Lock()
	rep.replay = max(rep.replay, lsn)
	rep.mu.Unlock()
}

const (
	primaryLSNSQL = `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint,
		pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint,
		current_setting('wal_block_size')::bigint, pg_size_bytes(current_setting('wal_segment_size')),
		current_setting('synchronous_commit') = 'off'`
	replayLSNSQL = `SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), 0)::bigint`
)

// PrimaryLSN is the primary's WAL position past the commit record of
// every transaction visible now: how far its WAL is flushed, since a
// commit is flushed before it becomes visible; with synchronous_commit
// off (the session default of the pool, which the projector shares) the
// insert position, since such commits become visible before they are
// written out. A position just past a page header means the page's start:
// a replica's replay position (the end of the last record) stops there
// until the next record, which on an idle primary may come many seconds
// later.
func (r *Router) PrimaryLSN(ctx context.Context) (uint64, error) {
	lsn, _, err := r.positions(ctx)
	return lsn, err
}

// positions returns PrimaryLSN's position and how far the primary's WAL
// is flushed (what walsenders may have sent).
func (r *Router) positions(ctx context.Context) (visible, flushed uint64, err error) {
	var (
		insert, flush, block, segment int64
		async                         bool
	)
	if err := r.primary.QueryRow(ctx, primaryLSNSQL).Scan(&insert, &flush, &block, &segment, &async); err != nil {
		return 0, 0, fmt.Errorf("read primary wal position: %w", postgres.Translate(err))
	}
	const shortHeader, longHeader = 24, 40 // SizeOfXLogShortPHD, SizeOfXLogLongPHD
	pageStart := func(lsn int64) uint64 {
		switch {
		case segment > 0 && lsn%segment == longHeader:
			return uint64(lsn - longHeader)
		case block > 0 && lsn%block == shortHeader && lsn%segment != shortHeader:
			return uint64(lsn - shortHeader)
		}
		return uint64(lsn)
	}
	flushed = pageStart(flush)
	if async {
		return max(pageStart(insert), flushed), flushed, nil
	}
	return flushed, flushed, nil
}

// errBehind ends the wait for a replay that did not come in time.
var errBehind = errors.New("replica has not replayed the write yet")

// awaitReplay polls rep's replay position (a cheap function call) until it
// reaches bar, for at most TokenWait.
func (r *Router) awaitReplay(ctx context.Context, rep *replica, bar uint64) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.TokenWait)
	defer cancel()
	// Replay trails the flush that a synchronous commit waited for by well
	// under a millisecond on a near replica: poll finely first, so that
	// the wait costs about what it must.
	wait := 100 * time.Microsecond
	for {
		var lsn int64
		if err := rep.pool.QueryRow(ctx, replayLSNSQL).Scan(&lsn); err != nil {
			return err
		}
		rep.noteReplay(uint64(lsn))
		if uint64(lsn) >= bar {
			return nil
		}
		select {
		case <-ctx.Done():
			return errBehind
		case <-time.After(wait):
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// Check measures every replica once: the primary's position first, then
// each replica's replay position and replay time, all at once.
func (r *Router) Check(ctx context.Context) {
	if !r.configured() {
		return
	}
	r.discover(ctx)
	reps := *r.reps.Load()
	if len(reps) == 0 {
		return
	}
	at := time.Now()
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CheckTimeout)
	primary, err := r.PrimaryLSN(cctx)
	cancel()
	if err != nil {
		// Without the primary's position no lag can be bounded: leave the
		// states; their age alone makes them too stale soon.
		r.logger.Warn("replica_check_primary_failed", "error", err.Error())
		return
	}
	r.hmu.Lock()
	r.history = append(r.history, sample{lsn: primary, at: at})
	if len(r.history) > historyLen {
		r.history = r.history[len(r.history)-historyLen:]
	}
	r.hmu.Unlock()
	var wg sync.WaitGroup
	for _, rep := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.checkOne(ctx, rep, primary, at)
		}()
	}
	wg.Wait()
}

const replicaCheckSQL = `
	SELECT pg_is_in_recovery(),
	       coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), 0)::bigint,
	       coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), -1)::float8`

func (r *Router) checkOne(ctx context.Context, rep *replica, primary uint64, at time.Time) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CheckTimeout)
	defer cancel()
	var (
		recovering bool
		replay     int64
		sinceXact  float64
	)
	err := rep.pool.QueryRow(ctx, replicaCheckSQL).Scan(&recovering, &replay, &sinceXact)
	if err == nil && !recovering {
		err = errors.New("not in recovery: promoted, or not a replica")
	}
	rep.mu.Lock()
	was := rep.state
	if err != nil {
		rep.state = Down
		rep.mu.Unlock()
		r.m.healthy.WithLabelValues(rep.label).Set(0)
		if was != Down {
			r.logger.Warn("replica_down", "replica", rep.label, "error", err.Error())
		}
		return
	}
	rep.replay = max(rep.replay, uint64(replay))
	rep.lagBytes = 0
	if primary > rep.replay {
		rep.lagBytes = primary - rep.replay
	}
	rep.lagSeconds = r.lagSeconds(rep.replay, primary, at, sinceXact)
	rep.checked = at
	rep.state = Healthy
	if rep.lagSeconds > r.cfg.MaxLag.Seconds() {
		rep.state = Lagging
	}
	state, lagB, lagS := rep.state, rep.lagBytes, rep.lagSeconds
	rep.mu.Unlock()
	r.m.lagBytes.WithLabelValues(rep.label).Set(float64(lagB))
	r.m.lagSeconds.WithLabelValues(rep.label).Set(lagS)
	r.m.healthy.WithLabelValues(rep.label).Set(b2f(state == Healthy))
	if state != was {
		r.logger.Info("replica_state", "replica", rep.label, "state", string(state), "lag_bytes", lagB, "lag_seconds", lagS)
	}
}

// lagSeconds bounds how old a replica's data is, as of at: 0 when it has
// replayed everything the primary had then; else the least of two upper
// bounds: the age of the newest primary sample it has replayed past, and
// the age of the last transaction it replayed (sinceXact, negative when
// none since it started). The first alone serves an idle primary, where
// the last replayed commit may be hours old while a few bytes of WAL
// without any transaction (a checkpoint, a snapshot record) are all
// that is missing.
func (r *Router) lagSeconds(replay, primary uint64, at time.Time, sinceXact float64) float64 {
	if replay >= primary {
		return 0
	}
	bound := math.Inf(1)
	if sinceXact >= 0 {
		bound = sinceXact
	}
	r.hmu.Lock()
	defer r.hmu.Unlock()
	for i := len(r.history) - 1; i >= 0; i-- {
		if s := r.history[i]; s.lsn <= replay {
			bound = min(bound, at.Sub(s.at).Seconds())
			break
		}
	}
	return bound
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type metrics struct {
	reads                         *prometheus.CounterVec
	lagBytes, lagSeconds, healthy *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hmp_db_reads_total", Help: "Report reads served, by where they ran: primary or replica.",
		}, []string{"target"}),
		lagBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hmp_replica_lag_bytes", Help: "WAL bytes a replica had not replayed at its last check.",
		}, []string{"replica"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hmp_replica_lag_seconds", Help: "How old a replica's data may be, at its last check (+Inf: unknown).",
		}, []string{"replica"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hmp_replica_healthy", Help: "1 when a replica answers and is within the maximum lag.",
		}, []string{"replica"}),
	}
	m.reads.WithLabelValues("primary")
	m.reads.WithLabelValues("replica")
	if reg != nil {
		reg.MustRegister(m.reads, m.lagBytes, m.lagSeconds, m.healthy)
	}
	return m
}
