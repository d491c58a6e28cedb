package settings

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"hmp/internal/knobs"
)

func testProfiles(name string) (Settings, error) {
	switch name {
	case "baseline":
		return Settings{Profile: name, Knobs: knobs.Knobs{Projector: knobs.Projector{MaxConcurrency: 20, BatchSize: 1, Workers: 20}, Corrections: "row",
			Cache: knobs.Cache{Entries: 1000, Invalidation: "sync"}}, Modified: []string{}}, nil
	case "phase1":
		return Settings{Profile: name, Knobs: knobs.Knobs{Projector: knobs.Projector{MaxConcurrency: 500, BatchSize: 250, Workers: 2, LingerMs: 10}, Corrections: "batch",
			Cache: knobs.Cache{Entries: 10000, Invalidation: "async"}}, Modified: []string{}}, nil
	}
	return Settings{}, fmt.Errorf("%w %q", ErrUnknownProfile, name)
}

func TestResolve(t *testing.T) {
	cur, _ := testProfiles("phase1")
	p := func(s string) *string { return &s }
	n := func(v int) *int { return &v }
	for _, tc := range []struct {
		name     string
		change   Change
		profile  string
		conc     int
		modified []string
		bad      []string
	}{
		{name: "a whole profile", change: Change{Profile: p("baseline")}, profile: "baseline", conc: 20, modified: []string{}},
		{name: "a knob", change: Change{Projector: &ProjectorChange{MaxConcurrency: n(50)}}, profile: "phase1", conc: 50,
			modified: []string{"projector.maxConcurrency"}},
		{name: "a profile and a knob", change: Change{Profile: p("baseline"), Cache: &CacheChange{Invalidation: p("async")}},
			profile: "baseline", conc: 20, modified: []string{"cache.invalidation"}},
		{name: "every wrong field", change: Change{Profile: p("phase9"), Corrections: p("fast"),
			Projector:  &ProjectorChange{BatchSize: n(0), LingerMs: n(5000)},
			Cache:      &CacheChange{Entries: n(0)},
			RateLimits: &RateLimitsChange{WritesPerOrg: &knobs.Limit{Count: -1}, WritesPerUser: &knobs.Limit{Count: 3}}},
			bad: []string{"cache.entries", "corrections", "profile", "projector.batchSize", "projector.lingerMs",
				"rateLimits.writesPerOrg.count", "rateLimits.writesPerUser.periodSeconds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(cur, tc.change, testProfiles)
			if tc.bad != nil {
				var verr *ValidationError
				if !errors.As(err, &verr) {
					t.Fatalf("want a validation error, got %v", err)
				}
				var fields []string
				for _, f := range verr.Fields {
					fields = append(fields, f.Field)
				}
				slices.Sort(fields)
				if !slices.Equal(fields, tc.bad) {
					t.Fatalf("wrong fields %v, want %v", fields, tc.bad)
				}
				if !Equal(got, cur) {
					t.Fatalf("a rejected change returned other settings: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Profile != tc.profile || got.Projector.MaxConcurrency != tc.conc || !slices.Equal(got.Modified, tc.modified) {
				t.Fatalf("got %+v", got)
			}
		})
	}
}
