package cache

import (
	"errors"
	"fmt"
	"time"
)

// Invalidation modes.
const (
	// ModeSync applies a projector batch's invalidations on the committing
	// instance before the batch is acknowledged, and tells the other
	// instances over the bus (the baseline profile, and the rollback path).
	ModeSync = "sync"
	// ModeAsync only publishes the batch's invalidations on the bus; every
	// instance, the committing one included, applies them on receipt.
	ModeAsync = "async"
)

// Config tunes the report cache. The zero value of each field means its
// default.
type Config struct {
	// Entries is the most reports the in-process tier holds. Default
	// 10,000; negative: the cache is off (every read goes to PostgreSQL).
	Entries int
	// ActiveTTL is how long a report touching an active date is kept.
	// Default 15 s.
	ActiveTTL time.Duration
	// HistoricalTTL is how long any other report is kept. Default 2 min.
	HistoricalTTL time.Duration
	// ActiveDays defines an active date: one on or after today minus
	// ActiveDays, today taken in the property's time zone. Default 3.
	ActiveDays int
	// RedisURL enables the shared tier (redis://host:port/db). Empty: no
	// shared tier.
	RedisURL string
	// RedisTimeout bounds every Redis call; a slower Redis counts as a
	// failure of the breaker. Default 50 ms.
	RedisTimeout time.Duration
	// BreakerFailures is how many consecutive Redis failures open the
	// breaker. Default 5.
	BreakerFailures int
	// BreakerOpen is how long the open breaker keeps Redis out before a
	// trial call. Default 60 s.
	BreakerOpen time.Duration
	// Invalidation is ModeSync or ModeAsync. Default ModeAsync.
	Invalidation string
	// ClockSkew is the most the clocks of two instances may differ by: an
	// entry computed within ClockSkew after a change is treated as stale.
	// Default 100 ms.
	ClockSkew time.Duration
	// ApplyDelay holds every received announcement this long before
	// applying it: fault injection for tests (a slow instance), 0 in
	// production.
	ApplyDelay time.Duration
	// Subject is the core NATS subject invalidations travel on. Default
	// "hmp.cache.invalidate".
	Subject string
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.Entries == 0 {
		c.Entries = 10_000
	}
	if c.ActiveTTL == 0 {
		c.ActiveTTL = 15 * time.Second
	}
	if c.HistoricalTTL == 0 {
		c.HistoricalTTL = 2 * time.Minute
	}
	if c.ActiveDays == 0 {
		c.ActiveDays = 3
	}
	if c.RedisTimeout == 0 {
		c.RedisTimeout = 50 * time.Millisecond
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerOpen == 0 {
		c.BreakerOpen = 60 * time.Second
	}
	if c.Invalidation == "" {
		c.Invalidation = ModeAsync
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = 100 * time.Millisecond
	}
	if c.Subject == "" {
		c.Subject = "hmp.cache.invalidate"
	}
	return c
}

// Enabled reports whether the cache is on.
func (c Config) Enabled() bool { return c.Entries >= 0 }

// Validate reports every problem of c (defaults filled) at once.
func (c Config) Validate() error {
	var errs []error
	if c.Invalidation != ModeSync && c.Invalidation != ModeAsync {
		errs = append(errs, fmt.Errorf("cache invalidation must be %q or %q, got %q", ModeSync, ModeAsync, c.Invalidation))
	}
	if c.ActiveTTL < 0 || c.HistoricalTTL < 0 || c.RedisTimeout < 0 || c.BreakerOpen < 0 || c.ClockSkew < 0 {
		errs = append(errs, errors.New("cache durations must not be negative"))
	}
	if c.ActiveDays < 0 || c.BreakerFailures < 0 {
		errs = append(errs, errors.New("cache active days and breaker failures must not be negative"))
	}
	return errors.Join(errs...)
}

// maxTTL is the longest an entry lives in any tier.
func (c Config) maxTTL() time.Duration { return max(c.ActiveTTL, c.HistoricalTTL) }
