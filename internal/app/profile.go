package app

import (
	"fmt"
	"sort"
	"time"

	"hmp/internal/cache"
	"hmp/internal/postgres"
	"hmp/internal/ratelimit"
	"hmp/internal/reconcile"
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
	// WritesPerUser and WritesPerOrg are the write budgets (zero:
	// unlimited).
	WritesPerUser, WritesPerOrg ratelimit.Limit
	// Corrections is how drift corrections are written: "row" (one
	// statement each, the guide's "before") or "batch".
	Corrections string
	// Cache sizes the report cache and picks its invalidation mode.
	Cache cache.Config
	// Partitions is the hash partition count by org_id of a schema the
	// profile creates (0: postgres.DefaultPartitions, 16); fixed at
	// creation, so it documents the stage rather than switching it live.
	Partitions int

	// ReplicaReads serves report reads from the configured read replicas
	// (HMP_REPLICA_URLS; none configured: the primary serves all). On in
	// every profile but baseline: configured replicas are used unless
	// HMP_REPLICA_READS=off.
	ReplicaReads bool
}

// Profiles returns the known profiles by name.
func Profiles() map[string]Profile {
	return map[string]Profile{
		// The guide's "before": 20 concurrent consumers, one commit per
		// event, a small pool.
		"baseline": {
			Name:        "baseline",
			Pool:        postgres.PoolConfig{MaxConns: 25, MinConns: 1, MaxConnIdleTime: 30 * time.Minute, MaxConnLifetime: time.Hour},
			Projector:   reports.ProjectorConfig{MaxConcurrency: 20, BatchSize: 1, Workers: 20},
			Corrections: reconcile.ModeRow,
			Cache:       cache.Config{Entries: 1_000, ActiveTTL: 15 * time.Second, HistoricalTTL: 2 * time.Minute, Invalidation: cache.ModeSync},
		},
		// Emergency scaling: 500 in flight, micro-batched multi-row
		// upserts (two transactions of up to 250 events at a time, so one
		// fills while the other commits), the tuned pool.
		"phase1": phase1(),
		// phase2: phase1's knobs plus what the second stage adds.
		"phase2": phase2(),
		// phase3: phase2's plus the resilience policies: the guide's rate
		// limit of 100 writes per 60 s per user.
		"phase3": phase3(),
	}
}

func phase1() Profile {
	return Profile{
		Name:        "phase1",
		Pool:        postgres.PoolConfig{MaxConns: 100, MinConns: 10, MaxConnIdleTime: 10 * time.Minute, MaxConnLifetime: time.Hour},
		Projector:   reports.ProjectorConfig{MaxConcurrency: 500, BatchSize: 250, Workers: 2, Linger: 10 * time.Millisecond},
		Corrections: reconcile.ModeBatch,
		Cache:       cache.Config{Entries: 10_000, ActiveTTL: 15 * time.Second, HistoricalTTL: 2 * time.Minute, Invalidation: cache.ModeAsync},
		// Replicas someone configured are meant to be read: off only in
		// the baseline (the guide's "before") or by HMP_REPLICA_READS=off.
		ReplicaReads: true,
	}
}

func phase2() Profile {
	p := phase1()
	p.Name = "phase2"
	p.Partitions = 64
	return p
}

func phase3() Profile {
	p := phase2()
	p.Name = "phase3"
	p.WritesPerUser = ratelimit.Limit{Count: 100, Period: 60 * time.Second}
	p.WritesPerOrg = ratelimit.Limit{Count: 1000, Period: 60 * time.Second}
	return p
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
