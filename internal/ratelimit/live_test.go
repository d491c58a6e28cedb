package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"hmp/internal/knobs"
	"hmp/internal/ratelimit"
)

// TestSetLimits: limits change live: a new limit refuses past its count,
// an unchanged one keeps its spent budget, a lifted one lets all through.
func TestSetLimits(t *testing.T) {
	ctx := context.Background()
	l := newLimiter(t, nil, nil, map[string]ratelimit.Limit{ratelimit.LoginEmail: {Count: 1, Period: time.Hour}})
	allow := func(name string, n int) string {
		var got []bool
		for range n {
			ok, _ := l.Allow(ctx, name, "k")
			got = append(got, ok)
		}
		return fmt.Sprint(got)
	}
	if got := allow(ratelimit.LoginEmail, 2); got != "[true false]" {
		t.Fatalf("login before: %s", got)
	}
	if got := allow(ratelimit.WritesUser, 3); got != "[true true true]" {
		t.Fatalf("writes unlimited: %s", got)
	}
	if err := l.SetLimits(map[string]ratelimit.Limit{ratelimit.WritesUser: {Count: 2, Period: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if got := allow(ratelimit.WritesUser, 3); got != "[true true false]" {
		t.Fatalf("writes limited to 2: %s", got)
	}
	if got := allow(ratelimit.LoginEmail, 1); got != "[false]" {
		t.Fatalf("an unchanged limit keeps its spent budget: %s", got)
	}
	if l.Limit(ratelimit.WritesUser) != (ratelimit.Limit{Count: 2, Period: time.Hour}) {
		t.Fatalf("limit reads %v", l.Limit(ratelimit.WritesUser))
	}
	if err := l.SetLimits(map[string]ratelimit.Limit{ratelimit.WritesUser: {}}); err != nil {
		t.Fatal(err)
	}
	if got := allow(ratelimit.WritesUser, 3); got != "[true true true]" {
		t.Fatalf("writes lifted: %s", got)
	}
}

// TestTune: the live settings' budgets (whole seconds) change only the
// limits that differ, so a configured sub-second period survives a tune
// that leaves it as the settings count it; a spent budget stays spent.
func TestTune(t *testing.T) {
	ctx := context.Background()
	sub := ratelimit.Limit{Count: 1, Period: 500 * time.Millisecond}
	l := newLimiter(t, nil, nil, map[string]ratelimit.Limit{ratelimit.WritesUser: sub})
	if got := sub.Live(); got != (knobs.Limit{Count: 1, PeriodSeconds: 1}) {
		t.Fatalf("Live() = %+v, want 1 per 1 s", got)
	}
	if (ratelimit.Limit{}).Live() != (knobs.Limit{}) {
		t.Fatal("an unlimited limit must read as the zero knob")
	}
	if ok, _ := l.Allow(ctx, ratelimit.WritesUser, "u"); !ok {
		t.Fatal("first write refused")
	}
	if err := l.Tune(knobs.RateLimits{WritesPerUser: sub.Live(), WritesPerOrg: knobs.Limit{Count: 3, PeriodSeconds: 60}}); err != nil {
		t.Fatal(err)
	}
	if got := l.Limit(ratelimit.WritesUser); got != sub {
		t.Fatalf("writes per user = %v, want the configured %v kept", got, sub)
	}
	if ok, _ := l.Allow(ctx, ratelimit.WritesUser, "u"); ok {
		t.Fatal("an unchanged limit must keep its spent budget")
	}
	if got := l.Limit(ratelimit.WritesOrg); got != (ratelimit.Limit{Count: 3, Period: time.Minute}) {
		t.Fatalf("writes per org = %v, want 3 per 1m", got)
	}
	if err := l.Tune(knobs.RateLimits{WritesPerUser: knobs.Limit{Count: 5, PeriodSeconds: 2}}); err != nil {
		t.Fatal(err)
	}
	if got := l.Limit(ratelimit.WritesUser); got != (ratelimit.Limit{Count: 5, Period: 2 * time.Second}) {
		t.Fatalf("writes per user = %v, want 5 per 2s", got)
	}
	if !l.Limit(ratelimit.WritesOrg).Unlimited() {
		t.Fatalf("writes per org = %v, want lifted by the zero knob", l.Limit(ratelimit.WritesOrg))
	}
}
