// Package knobs holds the scaling knobs: the values a profile names, the
// live settings turn without a restart and the running parts take (the
// reports projector's consumption, how corrections are written, the report
// cache, reads from replicas, the write budgets). One struct from profile
// to live setting, so that a knob has one default and one meaning of zero.
//
// It imports only the standard library, so that the projector (reports),
// the live settings (settings) and the profiles (app) can share it without
// depending on each other.
//
// Zero means the default in every field. Where a layer lies beneath (a
// Config or a flag over its profile: Over) the default is that layer's
// value; where nothing does (a profile after WithDefaults, the settings in
// force, the running projector) it is the built-in default that
// WithDefaults fills. A knob whose built-in default is "none" (no linger,
// unlimited, replica reads off) is therefore zero once resolved; a negative
// value asks for "none" over a layer that sets one, and WithDefaults turns
// it into that zero.
package knobs

import (
	"errors"
	"fmt"
	"time"
)

// Knobs are the knobs that change without a restart. The JSON form is the
// live settings' (GET/PUT /v1/admin/settings, the bucket's history).
type Knobs struct {
	// Projector is how the reports projector consumes events.
	Projector Projector `json:"projector"`
	// Corrections is how drift corrections are written: "row" (one
	// statement each, the guide's "before") or "batch". Empty: the
	// default (the profile's; then reconcile.Config's, batch).
	Corrections string `json:"corrections" enum:"row,batch"`
	// Cache sizes the report cache and picks its invalidation mode.
	Cache Cache `json:"cache"`
	// ReplicaReads sends report reads to the read replicas when there are
	// some (without replicas it is recorded and changes nothing). false:
	// off, the built-in default; a Config turns a profile's on off with
	// ReplicaReads "off" (HMP_REPLICA_READS).
	ReplicaReads bool `json:"replicaReads"`
	// RateLimits are the write budgets.
	RateLimits RateLimits `json:"rateLimits"`
}

// Projector tunes the reports projector's consumer. Tags flag, env and
// help give the serve flag of a knob (Register).
type Projector struct {
	// MaxConcurrency is the most events in flight (delivered, not yet
	// acknowledged). 0: the default (the profile's; built in 500).
	MaxConcurrency int `json:"maxConcurrency" doc:"events in flight (the guide's consumer concurrency), 1..100000" flag:"projector-concurrency" env:"HMP_PROJECTOR_CONCURRENCY" help:"events in flight in the reports projector"`
	// BatchSize is the most events applied in one transaction; 1 is one
	// commit per event (batching off, the guide's "before"). 0: the
	// default (the profile's; built in 500).
	BatchSize int `json:"batchSize" doc:"events per transaction, 1..10000; 1: batching off" flag:"projector-batch" env:"HMP_PROJECTOR_BATCH" help:"most events per projector transaction; 1: one commit per event"`
	// Workers is the number of transactions applied at once. 0: the
	// default (the profile's; built in 2).
	Workers int `json:"workers" doc:"transactions applied at once, 1..512" flag:"projector-workers" env:"HMP_PROJECTOR_WORKERS" help:"concurrent projector transactions"`
	// LingerMs is how long, in ms, a worker holding fewer than BatchSize
	// events waits for more before applying them. 0: the default (the
	// profile's; built in none, apply at once); negative: none over a
	// profile that lingers.
	LingerMs int `json:"lingerMs" doc:"how long a worker waits to fill a batch, ms, 0..1000"`
}

// Cache tunes the report cache.
type Cache struct {
	// Entries is the most reports in the in-process tier. 0: the default
	// (the profile's; then cache.Config's, 10,000); negative: no cache (not
	// a live setting: the live settings keep 1..10,000,000).
	Entries int `json:"entries" doc:"most reports in the in-process tier, 1..10000000" flag:"cache-entries" env:"HMP_CACHE_ENTRIES" help:"reports kept in the in-process cache; negative: no cache"`
	// Invalidation is "sync" (before the projector acknowledges) or
	// "async" (over the bus). Empty: the default (the profile's; then
	// cache.Config's, async).
	Invalidation string `json:"invalidation" enum:"sync,async" flag:"cache-invalidation" env:"HMP_CACHE_INVALIDATION" help:"sync (before the projector acks) or async (over the bus)"`
}

// Limit allows Count actions per PeriodSeconds. Count 0: the default (the
// profile's; built in unlimited); negative: unlimited over a profile that
// sets a budget.
type Limit struct {
	Count int `json:"count" doc:"0: unlimited"`
	// PeriodSeconds is the budget's period in seconds; required with a
	// positive Count.
	PeriodSeconds int `json:"periodSeconds" required:"false" doc:"required when count is set"`
}

// RateLimits are the write budgets of the HTTP edge.
type RateLimits struct {
	WritesPerUser Limit `json:"writesPerUser"`
	WritesPerOrg  Limit `json:"writesPerOrg"`
}

// Linger returns the linger as a duration (none: 0).
func (p Projector) Linger() time.Duration {
	return time.Duration(max(p.LingerMs, 0)) * time.Millisecond
}

// Period returns the limit's period as a duration.
func (l Limit) Period() time.Duration { return time.Duration(l.PeriodSeconds) * time.Second }

// Unlimited reports whether the limit allows everything.
func (l Limit) Unlimited() bool { return l.Count <= 0 }

// Over returns k with its zero fields taken from base (a Config's knobs
// over its profile's).
func (k Knobs) Over(base Knobs) Knobs {
	k.Projector = k.Projector.Over(base.Projector)
	k.Corrections = or(k.Corrections, base.Corrections)
	k.Cache.Entries = or(k.Cache.Entries, base.Cache.Entries)
	k.Cache.Invalidation = or(k.Cache.Invalidation, base.Cache.Invalidation)
	k.ReplicaReads = k.ReplicaReads || base.ReplicaReads
	k.RateLimits.WritesPerUser = k.RateLimits.WritesPerUser.Over(base.RateLimits.WritesPerUser)
	k.RateLimits.WritesPerOrg = k.RateLimits.WritesPerOrg.Over(base.RateLimits.WritesPerOrg)
	return k
}

// Over returns p with its zero fields taken from base.
func (p Projector) Over(base Projector) Projector {
	p.MaxConcurrency = or(p.MaxConcurrency, base.MaxConcurrency)
	p.BatchSize = or(p.BatchSize, base.BatchSize)
	p.Workers = or(p.Workers, base.Workers)
	p.LingerMs = or(p.LingerMs, base.LingerMs)
	return p
}

// Over returns l, or base when l's Count is zero.
func (l Limit) Over(base Limit) Limit {
	if l.Count == 0 {
		return base
	}
	return l
}

func or[T comparable](v, base T) T {
	var zero T
	if v == zero {
		return base
	}
	return v
}

// WithDefaults returns a copy of p with its zero fields at the built-in
// defaults and a negative LingerMs at none (0).
func (p Projector) WithDefaults() Projector {
	p = p.Over(Projector{MaxConcurrency: 500, BatchSize: 500, Workers: 2})
	p.LingerMs = max(p.LingerMs, 0)
	return p
}

// WithDefaults returns a copy of k with the knobs that have a built-in
// default here filled (the projector's) and every "none" sentinel at zero.
// Corrections and Cache keep an empty value for their owners'
// WithDefaults (reconcile.Config, cache.Config).
func (k Knobs) WithDefaults() Knobs {
	k.Projector = k.Projector.WithDefaults()
	for _, l := range []*Limit{&k.RateLimits.WritesPerUser, &k.RateLimits.WritesPerOrg} {
		if l.Count < 0 {
			*l = Limit{}
		}
	}
	return k
}

// Validate reports every problem of a projector's knobs in force.
func (p Projector) Validate() error {
	var errs []error
	if p.MaxConcurrency < 1 {
		errs = append(errs, fmt.Errorf("projector max concurrency must be at least 1, got %d", p.MaxConcurrency))
	}
	if p.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("projector batch size must be at least 1, got %d", p.BatchSize))
	}
	if p.Workers < 1 {
		errs = append(errs, fmt.Errorf("projector workers must be at least 1, got %d", p.Workers))
	}
	if p.LingerMs < 0 {
		errs = append(errs, fmt.Errorf("projector linger must not be negative, got %d ms", p.LingerMs))
	}
	return errors.Join(errs...)
}
