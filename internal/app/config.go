package app

import (
	"errors"
	"fmt"
	"net"
	"time"

	"hmp/internal/cache"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
	"hmp/internal/reports"
)

// Config is everything a running HMP needs. The zero value of each field
// means its default, filled by WithDefaults.
type Config struct {
	// HTTPAddr is where the API listens. Default 127.0.0.1:8080; port 0
	// picks a free one (tests).
	HTTPAddr string
	// DataDir holds the embedded PostgreSQL cluster, the embedded NATS
	// store and a generated token secret. Default ./.hmp.
	DataDir string
	// DatabaseURL points at an existing PostgreSQL. Empty: a private
	// cluster is started under DataDir from the installed binaries.
	DatabaseURL string
	// PostgresBinDir overrides where initdb and postgres are looked for.
	PostgresBinDir string
	// Profile names the scaling profile (baseline, phase1). Default phase1.
	// Fields set explicitly below win over the profile's.
	Profile string
	// Pool sizes the connection pool. Zero fields: the profile's.
	Pool postgres.PoolConfig
	// NATSURL points at an external NATS JetStream server or cluster.
	// Empty: an embedded server under DataDir/nats.
	NATSURL string
	// Projector tunes the reports projector. Zero fields: the profile's.
	Projector reports.ProjectorConfig
	// Cache tunes the report cache (Entries negative: off; RedisURL: the
	// shared tier). Zero fields: the profile's.
	Cache cache.Config
	// Relay tunes the outbox relay. Zero fields: defaults.
	Relay eventstore.RelayConfig
	// MaxInFlight bounds the API requests handled at once; more queue.
	// Default 32 (measured best on 2 cores); negative: unbounded.
	MaxInFlight int
	// ConsistencyTimeout bounds how long a read with a consistency token
	// waits for its write before answering 503. Default 5 s.
	ConsistencyTimeout time.Duration
	// TokenSecret signs access tokens; at least 32 bytes. Empty: a random
	// secret kept in DataDir/token.key (set it when running several
	// instances).
	TokenSecret string
	// TokenTTL is how long an access token is valid. Default 24 h.
	TokenTTL time.Duration
	// BcryptCost is the password hashing cost. Default 10.
	BcryptCost int
	// ShutdownTimeout bounds the graceful drain on stop. Default 15 s.
	ShutdownTimeout time.Duration
	// Clock is the time source of every service. Default time.Now; tests
	// move it.
	Clock func() time.Time
}

// WithDefaults returns a copy of c with every zero field at its default.
func (c Config) WithDefaults() Config {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = ".hmp"
	}
	if c.Profile == "" {
		c.Profile = DefaultProfile
	}
	if p, err := LookupProfile(c.Profile); err == nil {
		c.Pool = overlayPool(c.Pool, p.Pool)
		c.Projector = overlayProjector(c.Projector, p.Projector)
		c.Cache = overlayCache(c.Cache, p.Cache)
	}
	c.Cache = c.Cache.WithDefaults()
	c.Pool = c.Pool.WithDefaults()
	c.Projector = c.Projector.WithDefaults()
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 32
	}
	if c.ConsistencyTimeout == 0 {
		c.ConsistencyTimeout = 5 * time.Second
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 24 * time.Hour
	}
	if c.BcryptCost == 0 {
		c.BcryptCost = 10
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if _, err := LookupProfile(c.Profile); err != nil {
		errs = append(errs, err)
	}
	if c.Projector.MaxConcurrency < 1 || c.Projector.BatchSize < 1 || c.Projector.Workers < 1 {
		errs = append(errs, fmt.Errorf("projector concurrency, batch size and workers must be positive"))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("http addr %q: %w", c.HTTPAddr, err))
	}
	if err := c.Cache.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Pool.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.TokenSecret != "" && len(c.TokenSecret) < 32 {
		errs = append(errs, errors.New("token secret must be at least 32 bytes"))
	}
	if c.TokenTTL < time.Minute {
		errs = append(errs, fmt.Errorf("token ttl must be at least 1m, got %s", c.TokenTTL))
	}
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		errs = append(errs, fmt.Errorf("bcrypt cost must be 4..31, got %d", c.BcryptCost))
	}
	return errors.Join(errs...)
}

// overlayPool fills the zero fields of c from p.
func overlayPool(c, p postgres.PoolConfig) postgres.PoolConfig {
	if c.MaxConns == 0 {
		c.MaxConns = p.MaxConns
	}
	if c.MinConns == 0 {
		c.MinConns = p.MinConns
	}
	if c.MaxConnIdleTime == 0 {
		c.MaxConnIdleTime = p.MaxConnIdleTime
	}
	if c.MaxConnLifetime == 0 {
		c.MaxConnLifetime = p.MaxConnLifetime
	}
	return c
}

// overlayProjector fills the zero fields of c from p.
func overlayProjector(c, p reports.ProjectorConfig) reports.ProjectorConfig {
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = p.MaxConcurrency
	}
	if c.BatchSize == 0 {
		c.BatchSize = p.BatchSize
	}
	if c.Workers == 0 {
		c.Workers = p.Workers
	}
	if c.Linger == 0 {
		c.Linger = p.Linger
	}
	return c
}
