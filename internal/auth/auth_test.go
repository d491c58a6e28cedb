package auth_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"hmp/internal/auth"
	"hmp/internal/domain"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func setup(t *testing.T) (*auth.Tokens, *clock, domain.Actor) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	tokens, err := auth.New([]byte(strings.Repeat("k", 32)), time.Hour, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	now := clk.now()
	return tokens, clk, domain.Actor{OrgID: domain.NewID(now), UserID: domain.NewID(now), Role: domain.Admin}
}

func TestVerify(t *testing.T) {
	t.Parallel()

	t.Run("a token verifies again and again until it expires", func(t *testing.T) {
		t.Parallel()
		tokens, clk, actor := setup(t)
		token, exp, err := tokens.Issue(actor)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			got, err := tokens.Verify(token)
			if err != nil || got != actor {
				t.Fatalf("verify: %v, %+v", err, got)
			}
		}
		clk.set(exp.Add(-time.Nanosecond))
		if _, err := tokens.Verify(token); err != nil {
			t.Fatalf("just before expiry: %v", err)
		}
		clk.set(exp)
		for range 2 { // remembered, then verified afresh
			_, err := tokens.Verify(token)
			if !errors.Is(err, domain.ErrUnauthenticated) || !strings.Contains(err.Error(), "token expired") {
				t.Fatalf("at expiry: %v", err)
			}
		}
	})

	t.Run("a tampered token fails although the genuine one was verified", func(t *testing.T) {
		t.Parallel()
		tokens, _, actor := setup(t)
		token, _, err := tokens.Issue(actor)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tokens.Verify(token); err != nil {
			t.Fatal(err)
		}
		sig := token[strings.LastIndexByte(token, '.')+1:]
		flipped := token[:len(token)-len(sig)] + strings.Map(func(r rune) rune {
			if r == 'A' {
				return 'B'
			}
			return 'A'
		}, sig[:1]) + sig[1:]
		for _, bad := range []string{flipped, token + "x", strings.TrimSuffix(token, sig), ""} {
			if _, err := tokens.Verify(bad); !errors.Is(err, domain.ErrUnauthenticated) {
				t.Fatalf("verify %q: %v", bad, err)
			}
		}
	})

	t.Run("a token of another secret fails", func(t *testing.T) {
		t.Parallel()
		tokens, clk, actor := setup(t)
		other, err := auth.New([]byte(strings.Repeat("o", 32)), time.Hour, clk.now)
		if err != nil {
			t.Fatal(err)
		}
		token, _, err := other.Issue(actor)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Verify(token); err != nil {
			t.Fatal(err)
		}
		if _, err := tokens.Verify(token); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Fatalf("got %v", err)
		}
	})
}
