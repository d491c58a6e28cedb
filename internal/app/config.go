package app

import (
	"errors"
	"fmt"
	"net"
	"time"

	"hmp/internal/postgres"
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
	// Pool sizes the connection pool (default 100/10/10 min/1 h).
	Pool postgres.PoolConfig
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
	c.Pool = c.Pool.WithDefaults()
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
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("http addr %q: %w", c.HTTPAddr, err))
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
