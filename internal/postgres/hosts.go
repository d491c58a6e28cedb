package postgres

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultConnectTimeout bounds each host's connection attempt when the
// database URL sets no connect_timeout (nor PGCONNECT_TIMEOUT): without it
// a frozen or partitioned host (TCP accepted, no answer) holds a new
// connection until the caller's deadline, and a multi-host URL never gets
// to its next host.
const DefaultConnectTimeout = 2 * time.Second

// Role is what a host of the database URL was last seen to be.
type Role int

const (
	// RoleUnknown: not seen yet, or answered without saying.
	RoleUnknown Role = iota
	// RolePrimary: answered as read-write.
	RolePrimary
	// RoleStandby: answered in recovery (or read-only).
	RoleStandby
	// RoleDown: did not answer in time, or refused.
	RoleDown
)

func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleStandby:
		return "standby"
	case RoleDown:
		return "down"
	}
	return "unknown"
}

// HostsConfig tunes a Hosts. The zero value of each field means its
// default.
type HostsConfig struct {
	// Interval is how often Start's prober asks every host
	// pg_is_in_recovery(). Default 1 s.
	Interval time.Duration
	// Timeout bounds one probe, connection included. Default the URL's
	// connect timeout (DefaultConnectTimeout when it sets none).
	Timeout time.Duration
	// Penalty is how long a host that did not answer is tried last by new
	// connections. Default 30 s.
	Penalty time.Duration
}

// Hosts tracks the hosts of one (multi-host) database URL: which answered
// as primary, as standby, or not at all. A pool opened with it
// (PoolConfig.Hosts) tries the host that last answered read-write first
// and one that did not answer last, and drops its connections to a host
// once it is seen down or demoted. It learns from the pool's own
// connection attempts and, once started, from a probe of every host each
// Interval (the replica router's discovery reads Members). Safe for
// concurrent use.
type Hosts struct {
	base   *pgxpool.Config // as parsed, without the tracking hooks
	cfg    HostsConfig
	hosts  []*trackedHost // URL order
	byKey  map[string]*trackedHost
	names  sync.Map // resolved IP -> host name as in the URL
	now    func() time.Time
	dialer pgconn.DialFunc

	startOnce, stopOnce sync.Once
	cancel              context.CancelFunc
	done                chan struct{}
}

type trackedHost struct {
	key   string // host:port as in the URL
	index int    // 0-based position in the URL
	fb    pgconn.FallbackConfig

	mu   sync.Mutex
	role Role
	at   time.Time // when role was last observed
	// epoch grows when the host is seen down or stops being the primary:
	// connections made in an earlier epoch are dropped at acquire.
	epoch atomic.Int64
}

// Member is one host of the URL as last seen.
type Member struct {
	// Index is the host's 1-based position in the URL.
	Index int
	// Addr is host:port as the URL names it (no credentials).
	Addr string
	Role Role
	// Seen is when Role was observed (zero: never).
	Seen time.Time
}

// NewHosts parses url's hosts. It connects to nothing until used.
func NewHosts(url string, cfg HostsConfig) (*Hosts, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", errors.New("invalid connection string"))
	}
	defaultConnectTimeout(pc)
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = pc.ConnConfig.ConnectTimeout
	}
	if cfg.Penalty == 0 {
		cfg.Penalty = 30 * time.Second
	}
	h := &Hosts{base: pc.Copy(), cfg: cfg, byKey: map[string]*trackedHost{}, now: time.Now,
		dialer: pc.ConnConfig.DialFunc, done: make(chan struct{})}
	cc := pc.ConnConfig
	all := append([]*pgconn.FallbackConfig{{Host: cc.Host, Port: cc.Port, TLSConfig: cc.TLSConfig}}, cc.Fallbacks...)
	for _, fb := range all {
		key := net.JoinHostPort(fb.Host, strconv.Itoa(int(fb.Port)))
		if h.byKey[key] != nil {
			continue // sslmode=prefer lists each host twice (TLS, then plain)
		}
		t := &trackedHost{key: key, index: len(h.hosts), fb: *fb}
		h.hosts = append(h.hosts, t)
		h.byKey[key] = t
	}
	return h, nil
}

// MultiHost reports whether url names more than one host.
func MultiHost(url string) (bool, error) {
	pc, err := pgconn.ParseConfig(url)
	if err != nil {
		return false, fmt.Errorf("parse database url: %w", errors.New("invalid connection string"))
	}
	return distinctHosts(pc) > 1, nil
}

// distinctHosts counts the hosts of cc (sslmode=prefer lists each twice).
func distinctHosts(cc *pgconn.Config) int {
	seen := map[string]bool{net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))): true}
	for _, fb := range cc.Fallbacks {
		seen[net.JoinHostPort(fb.Host, strconv.Itoa(int(fb.Port)))] = true
	}
	return len(seen)
}

// defaultConnectTimeout sets DefaultConnectTimeout when the URL sets none.
func defaultConnectTimeout(pc *pgxpool.Config) {
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
}

// Members returns every host of the URL in URL order.
func (h *Hosts) Members() []Member {
	out := make([]Member, len(h.hosts))
	for i, t := range h.hosts {
		t.mu.Lock()
		out[i] = Member{Index: t.index + 1, Addr: t.key, Role: t.role, Seen: t.at}
		t.mu.Unlock()
	}
	return out
}

// observe records that host key answered as role (RoleDown: did not).
func (h *Hosts) observe(key string, role Role) {
	t := h.byKey[key]
	if t == nil {
		return
	}
	t.mu.Lock()
	was := t.role
	t.role, t.at = role, h.now()
	t.mu.Unlock()
	if role == RoleDown || (was == RolePrimary && role == RoleStandby) {
		t.epoch.Add(1)
	}
}

// rank orders hosts for a new connection: the primary first, unknown
// ones, standbys, and last a host that did not answer within Penalty.
func (h *Hosts) rank(t *trackedHost, now time.Time) (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch t.role {
	case RolePrimary:
		return 0, t.at
	case RoleStandby:
		return 2, t.at
	case RoleDown:
		if now.Sub(t.at) < h.cfg.Penalty {
			return 3, t.at
		}
	}
	return 1, time.Time{}
}

// order rewrites cc's host list health-first (a stable sort: URL order
// among equals; the primary seen most recently first).
func (h *Hosts) order(cc *pgconn.Config) {
	all := append([]*pgconn.FallbackConfig{{Host: cc.Host, Port: cc.Port, TLSConfig: cc.TLSConfig}}, cc.Fallbacks...)
	now := h.now()
	type ranked struct {
		fb   *pgconn.FallbackConfig
		rank int
		at   time.Time
	}
	rs := make([]ranked, len(all))
	for i, fb := range all {
		rs[i] = ranked{fb: fb, rank: 1}
		if t := h.byKey[net.JoinHostPort(fb.Host, strconv.Itoa(int(fb.Port)))]; t != nil {
			rs[i].rank, rs[i].at = h.rank(t, now)
		}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if c := cmp.Compare(a.rank, b.rank); c != 0 || a.rank != 0 {
			return c
		}
		return b.at.Compare(a.at)
	})
	cc.Host, cc.Port, cc.TLSConfig = rs[0].fb.Host, rs[0].fb.Port, rs[0].fb.TLSConfig
	cc.Fallbacks = cc.Fallbacks[:0]
	for _, r := range rs[1:] {
		cc.Fallbacks = append(cc.Fallbacks, r.fb)
	}
}

// trackedConn is a connection to one host of the URL: what it learns of
// the host, and the host's epoch when it was made.
type trackedConn struct {
	net.Conn
	h        *Hosts
	host     *trackedHost
	epoch    int64
	answered atomic.Bool
}

// Close of a connection that never completed its handshake (the connect
// timeout, a refusal) marks its host down.
func (c *trackedConn) Close() error {
	if !c.answered.Load() {
		c.h.observe(c.host.key, RoleDown)
	}
	return c.Conn.Close()
}

// trackedOf finds the tracked connection under pgConn (beneath TLS).
func trackedOf(pgConn *pgconn.PgConn) *trackedConn {
	nc := pgConn.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*trackedConn)
	return c
}

// install adds the tracking hooks to a pool's configuration.
func (h *Hosts) install(pc *pgxpool.Config) {
	cc := &pc.ConnConfig.Config
	lookup, dial, validate := cc.LookupFunc, cc.DialFunc, cc.ValidateConnect
	cc.LookupFunc = func(ctx context.Context, host string) ([]string, error) {
		addrs, err := lookup(ctx, host)
		for _, a := range addrs {
			if ip, _, err := net.SplitHostPort(a); err == nil {
				a = ip
			}
			h.names.Store(a, host)
		}
		return addrs, err
	}
	cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		key := addr
		if ip, port, err := net.SplitHostPort(addr); err == nil {
			if name, ok := h.names.Load(ip); ok {
				key = net.JoinHostPort(name.(string), port)
			}
		}
		t := h.byKey[key]
		nc, err := dial(ctx, network, addr)
		if err != nil {
			if t != nil {
				h.observe(key, RoleDown)
			}
			return nil, err
		}
		if t == nil {
			return nc, nil
		}
		return &trackedConn{Conn: nc, h: h, host: t, epoch: t.epoch.Load()}, nil
	}
	cc.ValidateConnect = func(ctx context.Context, pgConn *pgconn.PgConn) error {
		c := trackedOf(pgConn)
		if c != nil {
			c.answered.Store(true)
		}
		var err error
		role := RoleUnknown
		if validate != nil {
			// target_session_attrs=read-write (or another): its verdict
			// says whether the host is writable.
			err = validate(ctx, pgConn)
			switch {
			case err == nil && pgConn.ParameterStatus("in_hot_standby") != "on":
				role = RolePrimary
			case errors.Is(err, pgconn.ErrReadOnlyConnection) || pgConn.ParameterStatus("in_hot_standby") == "on":
				role = RoleStandby
			}
		} else {
			switch pgConn.ParameterStatus("in_hot_standby") { // reported by PostgreSQL 14+
			case "on":
				role = RoleStandby
			case "off":
				role = RolePrimary
			}
		}
		if c != nil && role != RoleUnknown {
			h.observe(c.host.key, role)
		}
		return err
	}
	pc.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		h.order(&cc.Config)
		return nil
	}
	pc.PrepareConn = func(_ context.Context, conn *pgx.Conn) (bool, error) {
		// Cheap: an atomic load; a connection to a host since seen down or
		// demoted is dropped (a frozen primary's would hang the request).
		if c := trackedOf(conn.PgConn()); c != nil && c.host.epoch.Load() != c.epoch {
			return false, nil
		}
		return true, nil
	}
}

// Start probes every host at once and then every Interval, until Stop.
// Safe to call twice.
func (h *Hosts) Start(ctx context.Context) error {
	h.startOnce.Do(func() {
		ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
		h.Probe(ctx)
		go h.run(ctx)
	})
	return nil
}

// Stop ends the probes. Safe to call twice, and without Start.
func (h *Hosts) Stop() {
	h.stopOnce.Do(func() {
		if h.cancel == nil {
			close(h.done)
			return
		}
		h.cancel()
		<-h.done
	})
}

func (h *Hosts) run(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.Probe(ctx)
		}
	}
}

// Probe asks every host pg_is_in_recovery() once, all at once, each on a
// connection of its own made for the probe (bounded by Timeout).
func (h *Hosts) Probe(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range h.hosts {
		wg.Go(func() {
			role := h.probe(ctx, t)
			if ctx.Err() == nil {
				h.observe(t.key, role)
			}
		})
	}
	wg.Wait()
}

func (h *Hosts) probe(ctx context.Context, t *trackedHost) Role {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	cc := h.single(t.fb.Host, t.fb.Port, t.fb.TLSConfig).ConnConfig
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return RoleDown
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var recovering bool
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovering); err != nil {
		return RoleDown
	}
	if recovering {
		return RoleStandby
	}
	return RolePrimary
}

// single is the URL's configuration for one host only, whatever its role.
func (h *Hosts) single(host string, port uint16, tlsConfig *tls.Config) *pgxpool.Config {
	pc := h.base.Copy()
	cc := &pc.ConnConfig.Config
	cc.Host, cc.Port, cc.TLSConfig, cc.Fallbacks = host, port, tlsConfig, nil
	cc.ValidateConnect = nil // target_session_attrs is for the primary's pool
	return pc
}

// OpenMember opens a lazy pool (OpenLazy) on one host, addr (host:port:
// a host of the URL or another member, as Patroni names it), with the
// URL's user, password, database and TLS settings.
func (h *Hosts) OpenMember(ctx context.Context, addr string, cfg PoolConfig) (*pgxpool.Pool, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("member address: %w", err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("member port: %w", err)
	}
	tlsConfig := h.base.ConnConfig.TLSConfig
	if t := h.byKey[addr]; t != nil {
		tlsConfig = t.fb.TLSConfig
	}
	if tlsConfig != nil {
		tlsConfig = tlsConfig.Clone()
		tlsConfig.ServerName = host
	}
	cfg.Hosts = nil
	return openConfig(ctx, h.single(host, uint16(port), tlsConfig), cfg)
}
