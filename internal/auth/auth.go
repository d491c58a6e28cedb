// Package auth issues and verifies the signed access tokens (JWT, HS256)
// that carry an actor from login to every later request.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"hmp/internal/domain"
)

const issuer = "hmp"

// Tokens issues and verifies access tokens with one shared secret.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

// New returns Tokens signing with secret (at least 32 bytes), valid for ttl
// (default 24 h when zero). now is the clock.
func New(secret []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(secret) < 32 {
		return nil, errors.New("token secret must be at least 32 bytes")
	}
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	return &Tokens{
		secret: secret, ttl: ttl, now: now,
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
	jwt.RegisteredClaims
}

// Issue returns a signed token for actor and its expiry.
func (t *Tokens) Issue(actor domain.Actor) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(t.ttl).Truncate(time.Second)
	c := claims{
		Org:  actor.OrgID.String(),
		Role: actor.Role,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   actor.UserID.String(),
			IssuedAt:  jwt.NewNumericDate(now),
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
// actor. Any failure is domain.ErrUnauthenticated.
func (t *Tokens) Verify(token string) (domain.Actor, error) {
	var c claims
	if _, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil }); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return domain.Actor{}, fmt.Errorf("%w: token expired", domain.ErrUnauthenticated)
		}
		return domain.Actor{}, fmt.Errorf("%w: invalid token", domain.ErrUnauthenticated)
	}
	org, err1 := domain.ParseID(c.Org)
	user, err2 := domain.ParseID(c.Subject)
	if err1 != nil || err2 != nil || !c.Role.Valid() {
		return domain.Actor{}, fmt.Errorf("%w: invalid token claims", domain.ErrUnauthenticated)
	}
	return domain.Actor{OrgID: org, UserID: user, Role: c.Role}, nil
}
