// Package auth issues and verifies the signed access tokens (JWT, HS256)
// that carry an actor from login to every later request.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/maypok86/otter/v2"

	"hmp/internal/domain"
)

const issuer = "hmp"

// Tokens issues and verifies access tokens with one shared secret.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
	// verified remembers tokens that passed verification, so that the
	// requests of one session check the signature once: only the expiry
	// changes with time (tokens carry no not-before), and it is checked
	// on every hit. Keys are whole tokens, signature included, so a
	// forged one is never found.
	verified *otter.Cache[string, verifiedToken]
	// sessions, when set (UseUsers), makes Check see disabled, demoted
	// and deleted users and revoked tokens.
	sessions *sessions
}

type verifiedToken struct {
	actor domain.Actor
	exp   time.Time
	id    string
	// issued is when the token was signed (to the microsecond when it
	// says so, else to its iat second; zero when it carries neither),
	// compared with the user's TokensNotBefore.
	issued time.Time
}

// verifiedTokens bounds the remembered tokens (about 400 bytes each).
const verifiedTokens = 10_000

// New returns Tokens signing with secret (at least 32 bytes), valid for ttl
// (default 24 h when zero). now is the clock.
func New(secret []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(secret) < 32 {
		return nil, errors.New("token secret must be at least 32 bytes")
	}
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	// Size-bounded only: such a cache runs no goroutine, so Tokens needs
	// no Close.
	verified, err := otter.New(&otter.Options[string, verifiedToken]{MaximumSize: verifiedTokens})
	if err != nil {
		return nil, fmt.Errorf("token cache: %w", err)
	}
	return &Tokens{
		secret: secret, ttl: ttl, now: now, verified: verified,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(now),
		),
	}, nil
}

type claims struct {
	Org  string      `json:"org"`
	Role domain.Role `json:"role"`
	// IssuedAtMicros is iat to the microsecond (iat itself is whole
	// seconds): a user disabled and enabled again within one second must
	// keep refusing the tokens from before and accept the ones after.
	IssuedAtMicros int64 `json:"iat_us,omitempty"`
	jwt.RegisteredClaims
}

// Issue returns a signed token for actor and its expiry.
func (t *Tokens) Issue(actor domain.Actor) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(t.ttl).Truncate(time.Second)
	c := claims{
		Org:            actor.OrgID.String(),
		Role:           actor.Role,
		IssuedAtMicros: now.UnixMicro(),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:   issuer,
			Subject:  actor.UserID.String(),
			IssuedAt: jwt.NewNumericDate(now),
			// The token id lets a logout revoke this one token.
			ID:        domain.NewID(now).String(),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token's signature, issuer and expiry and returns its
// actor. Any failure is domain.ErrUnauthenticated. It does not ask whether
// the user or the token was since disabled, demoted or revoked: Check
// does.
func (t *Tokens) Verify(token string) (domain.Actor, error) {
	v, err := t.verify(token)
	return v.actor, err
}

func (t *Tokens) verify(token string) (verifiedToken, error) {
	if v, ok := t.verified.GetIfPresent(token); ok {
		// The parser's rule: valid while now is before exp.
		if t.now().Before(v.exp) {
			return v, nil
		}
		t.verified.Invalidate(token)
		return verifiedToken{}, fmt.Errorf("%w: token expired", domain.ErrUnauthenticated)
	}
	var c claims
	if _, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil }); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return verifiedToken{}, fmt.Errorf("%w: token expired", domain.ErrUnauthenticated)
		}
		return verifiedToken{}, fmt.Errorf("%w: invalid token", domain.ErrUnauthenticated)
	}
	org, err1 := domain.ParseID(c.Org)
	user, err2 := domain.ParseID(c.Subject)
	if err1 != nil || err2 != nil || !c.Role.Valid() {
		return verifiedToken{}, fmt.Errorf("%w: invalid token claims", domain.ErrUnauthenticated)
	}
	v := verifiedToken{actor: domain.Actor{OrgID: org, UserID: user, Role: c.Role}, exp: c.ExpiresAt.Time, id: c.ID}
	switch {
	case c.IssuedAtMicros > 0:
		v.issued = time.UnixMicro(c.IssuedAtMicros)
	case c.IssuedAt != nil:
		// Whole seconds: the token may be up to a second younger, so one
		// issued in the second of a disable counts as issued before it.
		v.issued = c.IssuedAt.Time
	}
	// Only tokens without a not-before claim are remembered (ours never
	// carry one): theirs is the one rule that could turn a valid token
	// invalid other than by expiry, were the clock set back.
	if c.ExpiresAt != nil && c.NotBefore == nil {
		t.verified.Set(token, v)
	}
	return v, nil
}
