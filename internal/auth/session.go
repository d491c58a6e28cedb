package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/maypok86/otter/v2"

	"hmp/internal/domain"
)

// Session is a token that passed Check: its actor with the user's current
// role, its id and its expiry.
type Session struct {
	Actor     domain.Actor
	ID        string
	ExpiresAt time.Time
}

// Users answers what a signed token cannot: whether its user still may act
// and in which role, and whether the token was revoked. tenancy implements
// it on PostgreSQL, so every instance sees the same answer.
type Users interface {
	// UserState returns the user's current role and since when their
	// tokens are good; a disabled or deleted user is
	// domain.ErrUnauthenticated.
	UserState(ctx context.Context, orgID, userID domain.ID) (domain.UserState, error)
	// Revoked reports whether the token id was revoked.
	Revoked(ctx context.Context, orgID domain.ID, tokenID string) (bool, error)
	// Revoke records the token id as revoked until expiresAt.
	Revoke(ctx context.Context, orgID, userID domain.ID, tokenID string, expiresAt time.Time) error
}

// DefaultMaxStale is how long Check trusts what it last learned about a
// user or a token: a disabled, demoted or deleted user, and a logged-out
// token, stop working on every instance within this (well within the 5 s
// promised by the API). A token issued before the user's last disable
// stays refused for good: the user's TokensNotBefore travels with their
// role, so an instance that learns of the re-enable learns of it too.
const DefaultMaxStale = 2 * time.Second

type userKey struct{ org, user domain.ID }

type known[T any] struct {
	v  T
	at time.Time
}

// sessions caches the answers of Users for MaxStale, in wall-clock time
// (not the service clock tests move: staleness is about real propagation).
type sessions struct {
	users    Users
	maxStale time.Duration
	// states holds each user's last known state; a zero Role marks a
	// disabled or deleted user.
	states  *otter.Cache[userKey, known[domain.UserState]]
	revoked *otter.Cache[string, known[bool]]
}

// UseUsers makes Check consult users, trusting each answer for maxStale
// (0: DefaultMaxStale). Call once, before serving.
func (t *Tokens) UseUsers(users Users, maxStale time.Duration) error {
	if maxStale <= 0 {
		maxStale = DefaultMaxStale
	}
	// Size-bounded only (no goroutine): freshness is checked on read.
	states, err := otter.New(&otter.Options[userKey, known[domain.UserState]]{MaximumSize: verifiedTokens})
	if err != nil {
		return fmt.Errorf("user cache: %w", err)
	}
	revoked, err := otter.New(&otter.Options[string, known[bool]]{MaximumSize: verifiedTokens})
	if err != nil {
		return fmt.Errorf("revocation cache: %w", err)
	}
	t.sessions = &sessions{users: users, maxStale: maxStale, states: states, revoked: revoked}
	return nil
}

// Check is Verify plus the user's and the token's current state: a token
// of a disabled or deleted user, one issued before the user was last
// disabled (also after they were enabled again), or a revoked one, is
// domain.ErrUnauthenticated; the actor carries the user's current role.
// A failure to learn the state (database down) is returned as is (it is
// not the caller's fault: 503, not 401).
func (t *Tokens) Check(ctx context.Context, token string) (Session, error) {
	v, err := t.verify(token)
	if err != nil {
		return Session{}, err
	}
	s := Session{Actor: v.actor, ID: v.id, ExpiresAt: v.exp}
	if t.sessions == nil {
		return s, nil
	}
	st, err := t.sessions.state(ctx, v.actor.OrgID, v.actor.UserID)
	if err != nil {
		return Session{}, err
	}
	if !st.TokensNotBefore.IsZero() && v.issued.Before(st.TokensNotBefore) {
		return Session{}, fmt.Errorf("%w: token issued before the user was disabled", domain.ErrUnauthenticated)
	}
	s.Actor.Role = st.Role
	if v.id != "" {
		revoked, err := t.sessions.isRevoked(ctx, v.actor.OrgID, v.id)
		if err != nil {
			return Session{}, err
		}
		if revoked {
			return Session{}, fmt.Errorf("%w: token revoked", domain.ErrUnauthenticated)
		}
	}
	return s, nil
}

// Revoke makes the session's token stop working on every instance (within
// the MaxStale of the others; at once on this one).
func (t *Tokens) Revoke(ctx context.Context, s Session) error {
	if t.sessions == nil || s.ID == "" {
		return nil
	}
	if err := t.sessions.users.Revoke(ctx, s.Actor.OrgID, s.Actor.UserID, s.ID, s.ExpiresAt); err != nil {
		return err
	}
	t.sessions.revoked.Set(s.ID, known[bool]{v: true, at: time.Now()})
	return nil
}

// Forget drops what this instance knows of a user, so that a change made
// here takes effect here at once (other instances: within MaxStale).
func (t *Tokens) Forget(orgID, userID domain.ID) {
	if t.sessions != nil {
		t.sessions.states.Invalidate(userKey{orgID, userID})
	}
}

// errGone marks a cached "user may not act" answer.
var errGone = errors.New("user disabled or deleted")

func (s *sessions) state(ctx context.Context, org, user domain.ID) (domain.UserState, error) {
	k := userKey{org, user}
	if e, ok := s.states.GetIfPresent(k); ok && time.Since(e.at) < s.maxStale {
		if e.v.Role == "" {
			return domain.UserState{}, fmt.Errorf("%w: %w", domain.ErrUnauthenticated, errGone)
		}
		return e.v, nil
	}
	st, err := s.users.UserState(ctx, org, user)
	if errors.Is(err, domain.ErrUnauthenticated) {
		s.states.Set(k, known[domain.UserState]{at: time.Now()})
		return domain.UserState{}, err
	}
	if err != nil {
		return domain.UserState{}, err
	}
	if st.Role == "" {
		return domain.UserState{}, fmt.Errorf("%w: the user has no role", domain.ErrUnauthenticated)
	}
	s.states.Set(k, known[domain.UserState]{v: st, at: time.Now()})
	return st, nil
}

func (s *sessions) isRevoked(ctx context.Context, org domain.ID, id string) (bool, error) {
	if e, ok := s.revoked.GetIfPresent(id); ok && (e.v || time.Since(e.at) < s.maxStale) {
		return e.v, nil
	}
	revoked, err := s.users.Revoked(ctx, org, id)
	if err != nil {
		return false, err
	}
	s.revoked.Set(id, known[bool]{v: revoked, at: time.Now()})
	return revoked, nil
}
