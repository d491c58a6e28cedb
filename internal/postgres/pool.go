package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolConfig sizes the connection pool. The zero value of each field means
// the scaling guide's value.
type PoolConfig struct {
	// MaxConns is the largest number of open connections. Default 100.
	MaxConns int32
	// MinConns is the number kept open while idle. Default 10.
	MinConns int32
	// MaxConnIdleTime closes a connection idle for longer. Default 10 min.
	MaxConnIdleTime time.Duration
	// MaxConnLifetime closes a connection older than this. Default 1 h.
	MaxConnLifetime time.Duration
	// StatementTimeout is the statement_timeout of every connection: the
	// server's backstop for a statement whose client went away (requests
	// carry their own, shorter, context deadline). Zero: none.
	StatementTimeout time.Duration
	// Tracer observes every query of the pool's connections (nil: none);
	// several are combined with pgx's multitracer.
	Tracer pgx.QueryTracer
	// Hosts is the health of a multi-host URL's hosts, shared with its
	// prober and the replica router's discovery (see Hosts); it must be
	// made from the same URL. Nil: a multi-host URL gets one of its own,
	// which learns only from the pool's connection attempts.
	Hosts *Hosts
}

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c PoolConfig) WithDefaults() PoolConfig {
	if c.MaxConns == 0 {
		c.MaxConns = 100
	}
	if c.MinConns == 0 {
		c.MinConns = 10
	}
	if c.MaxConnIdleTime == 0 {
		c.MaxConnIdleTime = 10 * time.Minute
	}
	if c.MaxConnLifetime == 0 {
		c.MaxConnLifetime = time.Hour
	}
	return c
}

// Validate reports every problem of c.
func (c PoolConfig) Validate() error {
	var errs []error
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("pool max conns must not be negative, got %d", c.MaxConns))
	}
	if c.MinConns < 0 {
		errs = append(errs, fmt.Errorf("pool min conns must not be negative, got %d", c.MinConns))
	}
	if c.MaxConns > 0 && c.MinConns > c.MaxConns {
		errs = append(errs, fmt.Errorf("pool min conns %d exceeds max conns %d", c.MinConns, c.MaxConns))
	}
	if c.MaxConnIdleTime < 0 || c.MaxConnLifetime < 0 {
		errs = append(errs, errors.New("pool durations must not be negative"))
	}
	return errors.Join(errs...)
}

// Open connects a pool to url sized by cfg and checks that the server
// answers.
func Open(ctx context.Context, url string, cfg PoolConfig) (*pgxpool.Pool, error) {
	pool, err := OpenLazy(ctx, url, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return pool, nil
}

// OpenLazy is Open without the check: the server may be away now (a
// replica being rebuilt) and connections are made when first needed.
// A URL without connect_timeout gets DefaultConnectTimeout; a multi-host
// URL tries its hosts health-first (see Hosts).
func OpenLazy(ctx context.Context, url string, cfg PoolConfig) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if cfg.Hosts == nil && distinctHosts(&pc.ConnConfig.Config) > 1 {
		if cfg.Hosts, err = NewHosts(url, HostsConfig{}); err != nil {
			return nil, err
		}
	}
	return openConfig(ctx, pc, cfg)
}

// openConfig opens a lazy pool on a parsed configuration.
func openConfig(ctx context.Context, pc *pgxpool.Config, cfg PoolConfig) (*pgxpool.Pool, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	defaultConnectTimeout(pc)
	pc.MaxConns = cfg.MaxConns
	pc.MinConns = cfg.MinConns
	pc.MaxConnIdleTime = cfg.MaxConnIdleTime
	pc.MaxConnLifetime = cfg.MaxConnLifetime
	// Jitter keeps a hundred connections born together from all being
	// recycled in the same second.
	pc.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 10
	// An idle connection's liveness ping (pgxpool's, after a second idle)
	// must not wait on a frozen server for the caller's whole deadline.
	pc.PingTimeout = pc.ConnConfig.ConnectTimeout
	if cfg.StatementTimeout > 0 {
		pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	}
	if cfg.Tracer != nil {
		pc.ConnConfig.Tracer = cfg.Tracer
	}
	if cfg.Hosts != nil {
		cfg.Hosts.install(pc)
	}
	pc.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerTypes(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}
