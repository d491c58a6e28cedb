package auth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"hmp/internal/auth"
	"hmp/internal/clocktest"
	"hmp/internal/domain"
)

func setup(t *testing.T) (*auth.Tokens, *clocktest.Clock, domain.Actor) {
	t.Helper()
	clk := clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	tokens, err := auth.New([]byte(strings.Repeat("k", 32)), time.Hour, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
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
		clk.Set(exp.Add(-time.Nanosecond))
		if _, err := tokens.Verify(token); err != nil {
			t.Fatalf("just before expiry: %v", err)
		}
		clk.Set(exp)
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
		other, err := auth.New([]byte(strings.Repeat("o", 32)), time.Hour, clk.Now)
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

// users is an in-memory auth.Users: one user's state, set by the test.
type users struct {
	mu       sync.Mutex
	disabled bool
	st       domain.UserState
}

func (u *users) set(disabled bool, st domain.UserState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.disabled, u.st = disabled, st
}

func (u *users) UserState(context.Context, domain.ID, domain.ID) (domain.UserState, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.disabled {
		return domain.UserState{}, fmt.Errorf("%w: the user is disabled", domain.ErrUnauthenticated)
	}
	return u.st, nil
}

func (u *users) Revoked(context.Context, domain.ID, string) (bool, error) { return false, nil }

func (u *users) Revoke(context.Context, domain.ID, domain.ID, string, time.Time) error { return nil }

// A token issued before its user was disabled stays refused once the user
// is enabled again (revocation by "not before", per user); tokens issued
// after the re-enable work, also within the second of the disable.
func TestCheckRefusesTokensIssuedBeforeADisable(t *testing.T) {
	t.Parallel()
	tokens, clk, actor := setup(t)
	u := &users{st: domain.UserState{Role: actor.Role}}
	if err := tokens.UseUsers(u, time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// change sets the user's state as tenancy does, and drops what
	// tokens remembers of it, as the PATCH handler does.
	change := func(disabled bool, st domain.UserState) {
		u.set(disabled, st)
		tokens.Forget(actor.OrgID, actor.UserID)
	}
	check := func(token string) error {
		_, err := tokens.Check(ctx, token)
		return err
	}

	clk.Set(clk.Now().Add(100 * time.Millisecond))
	before, _, err := tokens.Issue(actor)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(before); err != nil {
		t.Fatalf("before the disable: %v", err)
	}

	clk.Set(clk.Now().Add(100 * time.Millisecond))
	disabledAt := clk.Now()
	change(true, domain.UserState{Role: actor.Role, TokensNotBefore: disabledAt})
	if err := check(before); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("while disabled: %v", err)
	}

	clk.Set(clk.Now().Add(100 * time.Millisecond)) // same second as the disable
	change(false, domain.UserState{Role: actor.Role, TokensNotBefore: disabledAt})
	for range 2 { // asked, then remembered
		if err := check(before); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Fatalf("token from before the disable, after the re-enable: %v", err)
		}
	}
	after, _, err := tokens.Issue(actor)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(after); err != nil {
		t.Fatalf("token from after the re-enable: %v", err)
	}

	t.Run("a token with a whole-second iat only", func(t *testing.T) {
		sign := func(iat time.Time) string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"iss": "hmp", "sub": actor.UserID.String(), "org": actor.OrgID.String(), "role": string(actor.Role),
				"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(), "jti": "legacy-" + iat.String(),
			}).SignedString([]byte(strings.Repeat("k", 32)))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		// Issued in the second of the disable: maybe before it, refused.
		if err := check(sign(disabledAt)); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Fatalf("iat in the second of the disable: %v", err)
		}
		if err := check(sign(disabledAt.Add(time.Second))); err != nil {
			t.Fatalf("iat a second after the disable: %v", err)
		}
	})
}
