package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
