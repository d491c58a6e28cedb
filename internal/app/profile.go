package app

import (
	"fmt"
	"sort"
	"time"

	"hmp/internal/cache"
	"hmp/internal/postgres"
	"hmp/internal/reports"
)

// Profile is one named set of scaling knobs: the scaling guide's "before"
// (baseline) and each stage after it. Benchmarks run two profiles side by
// side; selecting an earlier profile is the rollback of a stage.
type Profile struct {
	Name string
	// Pool sizes the database pool.
	Pool postgres.PoolConfig
	// Projector is how the reports projector consumes events.
	Projector reports.ProjectorConfig
	// Cache sizes the report cache and picks its invalidation mode.
	Cache cache.Config
}

// Profiles returns the known profiles by name.
func Profiles() map[string]Profile {
	return map[string]Profile{
		// The guide's "before": 20 concurrent consumers, one commit per
		// event, a small pool.
		"baseline": {
			Name:      "baseline",
			Pool:      postgres.PoolConfig{MaxConns: 25, MinConns: 1, MaxConnIdleTime: 30 * time.Minute, MaxConnLifetime: time.Hour},
			Projector: reports.ProjectorConfig{MaxConcurrency: 20, BatchSize: 1, Workers: 20},
			Cache:     cache.Config{Entries: 1_000, ActiveTTL: 15 * time.Second, HistoricalTTL: 2 * time.Minute, Invalidation: cache.ModeSync},
		},
		// Emergency scaling: 500 in flight, micro-batched multi-row
		// upserts (two transactions of up to 250 events at a time, so one
		// fills while the other commits), the tuned pool.
		"phase1": {
			Name:      "phase1",
			Pool:      postgres.PoolConfig{MaxConns: 100, MinConns: 10, MaxConnIdleTime: 10 * time.Minute, MaxConnLifetime: time.Hour},
			Projector: reports.ProjectorConfig{MaxConcurrency: 500, BatchSize: 250, Workers: 2, Linger: 10 * time.Millisecond},
			Cache:     cache.Config{Entries: 10_000, ActiveTTL: 15 * time.Second, HistoricalTTL: 2 * time.Minute, Invalidation: cache.ModeAsync},
		},
	}
}

// DefaultProfile is the profile used when none is named.
const DefaultProfile = "phase1"

// LookupProfile returns the named profile.
func LookupProfile(name string) (Profile, error) {
	if name == "" {
		name = DefaultProfile
	}
	p, ok := Profiles()[name]
	if !ok {
		names := make([]string, 0)
		for n := range Profiles() {
			names = append(names, n)
		}
		sort.Strings(names)
		return Profile{}, fmt.Errorf("unknown profile %q (known: %v)", name, names)
	}
	return p, nil
}
