package knobs

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestOverAndDefaults(t *testing.T) {
	t.Parallel()
	profile := Knobs{Projector: Projector{MaxConcurrency: 20, LingerMs: 10}, Corrections: "row",
		RateLimits: RateLimits{WritesPerUser: Limit{Count: 100, PeriodSeconds: 60}}}
	for _, tc := range []struct {
		name string
		set  Knobs
		want Projector
		user Limit
	}{
		{name: "zero takes the profile's, then the built-in",
			want: Projector{MaxConcurrency: 20, BatchSize: 500, Workers: 2, LingerMs: 10}, user: Limit{Count: 100, PeriodSeconds: 60}},
		{name: "a set knob wins",
			set:  Knobs{Projector: Projector{MaxConcurrency: 7, BatchSize: 1}, RateLimits: RateLimits{WritesPerUser: Limit{Count: 3, PeriodSeconds: 1}}},
			want: Projector{MaxConcurrency: 7, BatchSize: 1, Workers: 2, LingerMs: 10}, user: Limit{Count: 3, PeriodSeconds: 1}},
		{name: "negative is none over a profile that sets one",
			set:  Knobs{Projector: Projector{LingerMs: -1}, RateLimits: RateLimits{WritesPerUser: Limit{Count: -1}}},
			want: Projector{MaxConcurrency: 20, BatchSize: 500, Workers: 2}, user: Limit{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.set.Over(profile).WithDefaults()
			if got.Projector != tc.want || got.RateLimits.WritesPerUser != tc.user || got.Corrections != "row" {
				t.Fatalf("got %+v, want projector %+v, writes per user %+v", got, tc.want, tc.user)
			}
			if err := got.Projector.Validate(); err != nil {
				t.Fatalf("resolved knobs invalid: %v", err)
			}
		})
	}
	if err := (Projector{}).Validate(); err == nil {
		t.Fatal("unresolved projector knobs validated")
	}
}

func TestRegisterHelpFromProfiles(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var k Knobs
	Register(fs, &k, map[string]Knobs{
		"phase1":   {Projector: Projector{BatchSize: 250}, Cache: Cache{Invalidation: "async"}},
		"baseline": {Projector: Projector{BatchSize: 1}, Cache: Cache{Invalidation: "sync"}},
	})
	f := fs.Lookup("projector-batch")
	if f == nil {
		t.Fatal("no projector-batch flag")
	}
	if want := "0: the profile's (baseline 1, phase1 250) (HMP_PROJECTOR_BATCH)"; !strings.HasSuffix(f.Usage, want) {
		t.Fatalf("help %q, want it to end %q", f.Usage, want)
	}
	if f := fs.Lookup("cache-invalidation"); f == nil || !strings.Contains(f.Usage, "empty: the profile's (baseline sync, phase1 async)") {
		t.Fatalf("cache-invalidation help: %+v", f)
	}
	if err := fs.Parse([]string{"-projector-batch", "7", "-cache-entries", "-1", "-cache-invalidation", "sync"}); err != nil {
		t.Fatal(err)
	}
	if k.Projector.BatchSize != 7 || k.Cache.Entries != -1 || k.Cache.Invalidation != "sync" {
		t.Fatalf("flags not bound to the knobs: %+v", k)
	}
	if fs.Lookup("projector-linger") != nil || fs.Lookup("corrections") != nil {
		t.Fatal("a knob without a flag tag got a flag")
	}
}
