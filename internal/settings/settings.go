// Package settings holds the scaling settings in force (the profile and the
// knobs a rollback turns) and changes them live on every instance: a change
// is written to a JetStream key-value bucket, which every instance watches
// and applies, so instances converge, a new instance starts with the
// settings in force, and the bucket's history of the key is the audit
// trail (who, from where, before and after, when).
package settings

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"hmp/internal/knobs"
)

// Settings are the knobs in force, with the profile they derive from.
// They are resolved: nothing lies beneath them, so a zero knob is its
// built-in default (knobs.Knobs): lingerMs 0 is no linger, a limit's count 0
// unlimited.
type Settings struct {
	// Profile is the profile the settings derive from (baseline, phase1,
	// phase2, phase3).
	Profile string `json:"profile"`
	// Modified lists the knobs set apart from the profile's values.
	Modified []string `json:"modified"`
	knobs.Knobs
}

// Change is a request to change the settings: a whole profile, single
// knobs, or a profile with some knobs set apart. Nil fields keep their
// value (the named profile's when Profile is set, else the value in force).
type Change struct {
	Profile      *string           `json:"profile,omitempty" doc:"baseline, phase1, phase2 or phase3: start from its values"`
	Projector    *ProjectorChange  `json:"projector,omitempty"`
	Corrections  *string           `json:"corrections,omitempty" doc:"row or batch"`
	Cache        *CacheChange      `json:"cache,omitempty"`
	ReplicaReads *bool             `json:"replicaReads,omitempty"`
	RateLimits   *RateLimitsChange `json:"rateLimits,omitempty"`
	Reason       string            `json:"reason,omitempty" maxLength:"500" doc:"why, for the audit trail"`
}

// ProjectorChange changes projector knobs.
type ProjectorChange struct {
	MaxConcurrency *int `json:"maxConcurrency,omitempty"`
	BatchSize      *int `json:"batchSize,omitempty"`
	Workers        *int `json:"workers,omitempty"`
	LingerMs       *int `json:"lingerMs,omitempty"`
}

// CacheChange changes cache knobs.
type CacheChange struct {
	Entries      *int    `json:"entries,omitempty"`
	Invalidation *string `json:"invalidation,omitempty"`
}

// RateLimitsChange changes write budgets.
type RateLimitsChange struct {
	WritesPerUser *knobs.Limit `json:"writesPerUser,omitempty"`
	WritesPerOrg  *knobs.Limit `json:"writesPerOrg,omitempty"`
}

// FieldError says which field of a change is wrong and why. Field is the
// JSON path within the change ("projector.maxConcurrency").
type FieldError struct {
	Field  string
	Reason string
	Value  any
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError lists every wrong field of a change.
type ValidationError struct{ Fields []*FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "invalid settings: " + strings.Join(parts, "; ")
}

// ErrUnknownProfile is wrapped by a lookup of a profile that does not
// exist.
var ErrUnknownProfile = errors.New("unknown profile")

// Profiles resolves a profile name to its settings.
type Profiles func(name string) (Settings, error)

// Resolve returns the settings a change leads to from cur, or a
// *ValidationError naming every wrong field.
func Resolve(cur Settings, c Change, profiles Profiles) (Settings, error) {
	var errs []*FieldError
	bad := func(field, reason string, v any) {
		errs = append(errs, &FieldError{Field: field, Reason: reason, Value: v})
	}
	next := cur
	var base Settings
	if c.Profile != nil {
		p, err := profiles(*c.Profile)
		if err != nil {
			bad("profile", err.Error(), *c.Profile)
		} else {
			next, base = p, p
		}
	} else if p, err := profiles(cur.Profile); err == nil {
		base = p
	} else {
		base = cur
	}
	intIn := func(field string, dst *int, v *int, lo, hi int) {
		if v == nil {
			return
		}
		if *v < lo || *v > hi {
			bad(field, fmt.Sprintf("must be within %d..%d", lo, hi), *v)
			return
		}
		*dst = *v
	}
	oneOf := func(field string, dst *string, v *string, allowed ...string) {
		if v == nil {
			return
		}
		if !slices.Contains(allowed, *v) {
			bad(field, fmt.Sprintf("must be one of %s", strings.Join(allowed, ", ")), *v)
			return
		}
		*dst = *v
	}
	limit := func(field string, dst *knobs.Limit, v *knobs.Limit) {
		if v == nil {
			return
		}
		switch {
		case v.Count < 0:
			bad(field+".count", "must not be negative (0: unlimited)", v.Count)
		case v.Count > 0 && (v.PeriodSeconds < 1 || v.PeriodSeconds > 86400):
			bad(field+".periodSeconds", "must be within 1..86400 when count is set", v.PeriodSeconds)
		default:
			*dst = *v
			if v.Count == 0 {
				*dst = knobs.Limit{}
			}
		}
	}
	if p := c.Projector; p != nil {
		intIn("projector.maxConcurrency", &next.Projector.MaxConcurrency, p.MaxConcurrency, 1, 100_000)
		intIn("projector.batchSize", &next.Projector.BatchSize, p.BatchSize, 1, 10_000)
		intIn("projector.workers", &next.Projector.Workers, p.Workers, 1, 512)
		intIn("projector.lingerMs", &next.Projector.LingerMs, p.LingerMs, 0, 1000)
	}
	oneOf("corrections", &next.Corrections, c.Corrections, "row", "batch")
	if cc := c.Cache; cc != nil {
		intIn("cache.entries", &next.Cache.Entries, cc.Entries, 1, 10_000_000)
		oneOf("cache.invalidation", &next.Cache.Invalidation, cc.Invalidation, "sync", "async")
	}
	if c.ReplicaReads != nil {
		next.ReplicaReads = *c.ReplicaReads
	}
	if r := c.RateLimits; r != nil {
		limit("rateLimits.writesPerUser", &next.RateLimits.WritesPerUser, r.WritesPerUser)
		limit("rateLimits.writesPerOrg", &next.RateLimits.WritesPerOrg, r.WritesPerOrg)
	}
	if len(errs) > 0 {
		return cur, &ValidationError{Fields: errs}
	}
	next.Modified = Diff(base, next)
	return next, nil
}

// Diff names the knobs whose values differ between a and b.
func Diff(a, b Settings) []string {
	d := []string{}
	add := func(name string, differ bool) {
		if differ {
			d = append(d, name)
		}
	}
	add("projector.maxConcurrency", a.Projector.MaxConcurrency != b.Projector.MaxConcurrency)
	add("projector.batchSize", a.Projector.BatchSize != b.Projector.BatchSize)
	add("projector.workers", a.Projector.Workers != b.Projector.Workers)
	add("projector.lingerMs", a.Projector.LingerMs != b.Projector.LingerMs)
	add("corrections", a.Corrections != b.Corrections)
	add("cache.entries", a.Cache.Entries != b.Cache.Entries)
	add("cache.invalidation", a.Cache.Invalidation != b.Cache.Invalidation)
	add("replicaReads", a.ReplicaReads != b.ReplicaReads)
	add("rateLimits.writesPerUser", a.RateLimits.WritesPerUser != b.RateLimits.WritesPerUser)
	add("rateLimits.writesPerOrg", a.RateLimits.WritesPerOrg != b.RateLimits.WritesPerOrg)
	return d
}

// Equal reports whether a and b set every knob alike (and name the same
// profile).
func Equal(a, b Settings) bool {
	return a.Profile == b.Profile && len(Diff(a, b)) == 0
}
