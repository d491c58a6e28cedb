package config

import (
	"fmt"
	"sort"
	"time"

	"hmp/internal/cache"
	"hmp/internal/knobs"
	"hmp/internal/postgres"
	"hmp/internal/reconcile"
)

// Profile is one named set of scaling knobs: the scaling guide's "before"
// (baseline) and each stage after it. Benchmarks run two profiles side by
// side; selecting an earlier profile is the rollback of a stage. A zero
// knob is its built-in default (knobs.Knobs).
type Profile struct {
	Name string
	// Pool sizes the database pool.
	Pool postgres.PoolConfig
	// Knobs are what the live settings turn: the projector's consumption,
	// the corrections mode, the cache, replica reads (configured replicas
	// are read unless HMP_REPLICA_READS=off; none configured: the primary
	// serves all) and the write budgets.
	knobs.Knobs
	// Partitions is the hash partition count by org_id of a schema the
	// profile creates (0: postgres.DefaultPartitions, 16); fixed at
	// creation, so it documents the stage rather than switching it live.
	Partitions int
}

// Profiles returns the known profiles by name.
func Profiles() map[string]Profile {
	return map[string]Profile{
		// The guide's "before": 20 concurrent consumers, one commit per
		// event, a small pool.
		"baseline": {
			Name: "baseline",
			Pool: postgres.PoolConfig{MaxConns: 25, MinConns: 1, MaxConnIdleTime: 30 * time.Minute, MaxConnLifetime: time.Hour},
			Knobs: knobs.Knobs{
				Projector:   knobs.Projector{MaxConcurrency: 20, BatchSize: 1, Workers: 20},
				Corrections: reconcile.ModeRow,
				Cache:       knobs.Cache{Entries: 1_000, Invalidation: cache.ModeSync},
			},
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
		Name: "phase1",
		Pool: postgres.PoolConfig{MaxConns: 100, MinConns: 10, MaxConnIdleTime: 10 * time.Minute, MaxConnLifetime: time.Hour},
		Knobs: knobs.Knobs{
			Projector:   knobs.Projector{MaxConcurrency: 500, BatchSize: 250, Workers: 2, LingerMs: 10},
			Corrections: reconcile.ModeBatch,
			Cache:       knobs.Cache{Entries: 10_000, Invalidation: cache.ModeAsync},
			// Replicas someone configured are meant to be read: off only in
			// the baseline (the guide's "before") or by HMP_REPLICA_READS=off.
			ReplicaReads: true,
		},
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
	p.RateLimits = knobs.RateLimits{
		WritesPerUser: knobs.Limit{Count: 100, PeriodSeconds: 60},
		WritesPerOrg:  knobs.Limit{Count: 1000, PeriodSeconds: 60},
	}
	return p
}

// ProfileKnobs returns the knobs of every profile by name (the help of
// their flags lists them).
func ProfileKnobs() map[string]knobs.Knobs {
	out := map[string]knobs.Knobs{}
	for n, p := range Profiles() {
		out[n] = p.Knobs
	}
	return out
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
