// Package operator guards the operator surface (the /v1/admin API, the
// dashboard): it checks the operator token (HMP_ADMIN_TOKEN) in constant
// time, limits the failed attempts of each client address (429 with a
// wait once spent), counts and logs them (never the guess), tells a token
// strong enough to guard every tenant's live settings, and reads what a
// trusted proxy says about the client (its address, TLS).
package operator

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/ratelimit"
)

// MinTokenBytes is the shortest operator token accepted.
const MinTokenBytes = 32

// ValidateToken reports why tok cannot be the operator token: shorter
// than MinTokenBytes, or not random-looking (fewer than 10 distinct
// bytes, or one shorter string repeated). A token from
// `openssl rand -hex 32` passes.
func ValidateToken(tok string) error {
	if len(tok) < MinTokenBytes {
		return errors.New("operator token must be at least 32 bytes (try: openssl rand -hex 32)")
	}
	distinct := map[byte]bool{}
	for i := range len(tok) {
		distinct[tok[i]] = true
	}
	if len(distinct) < 10 {
		return errors.New("operator token must look random: it has fewer than 10 distinct characters (try: openssl rand -hex 32)")
	}
	for p := 1; p <= len(tok)/2; p++ {
		if len(tok)%p == 0 && tok == repeat(tok[:p], len(tok)/p) {
			return errors.New("operator token must look random: it repeats a shorter string (try: openssl rand -hex 32)")
		}
	}
	return nil
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

// Surfaces name where an attempt came in (the metrics' surface label).
const (
	SurfaceAPI       = "api"       // Authorization: Bearer on /v1/admin
	SurfaceDashboard = "dashboard" // the dashboard's header or login form
	SurfaceProfiling = "pprof"     // Authorization: Bearer on /debug/pprof
)

// Verdict is the answer to one attempt.
type Verdict int

const (
	// Allowed: the token is right.
	Allowed Verdict = iota
	// Off: no operator token is configured (answer 401).
	Off
	// Wrong: a wrong or missing token (answer 401).
	Wrong
	// Limited: the address spent its failures (answer 429 with the wait);
	// the token was not even compared.
	Limited
)

// Config is what a Guard needs.
type Config struct {
	// Token is the operator token. Empty: every attempt is Off.
	Token string
	// Limiter holds the ratelimit.OperatorAddr budget of failures per
	// client address (shared through Redis when it is). Nil or that limit
	// unlimited: failures are counted and logged, never refused.
	Limiter *ratelimit.Limiter
	// Proxies are the proxies whose X-Forwarded-For and X-Forwarded-Proto
	// are believed. Nil: none (the peer's address is the client's).
	Proxies *Proxies
	// Registerer takes hmp_operator_auth_failures_total{surface,reason}
	// (reason wrong or limited). Nil: not exported.
	Registerer prometheus.Registerer
	// Logger, nil: discard.
	Logger *slog.Logger
}

// Guard checks operator tokens. Safe for concurrent use; one per process
// (its metric registers once).
type Guard struct {
	token    []byte
	limiter  *ratelimit.Limiter
	proxies  *Proxies
	failures *prometheus.CounterVec
	logger   *slog.Logger
}

// New returns the guard of cfg.
func New(cfg Config) *Guard {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Guard{token: []byte(cfg.Token), limiter: cfg.Limiter, proxies: cfg.Proxies, logger: cfg.Logger,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hmp_operator_auth_failures_total",
			Help: "Failed operator authentications (a wrong or missing HMP_ADMIN_TOKEN), by surface and reason: wrong, or limited (429: the address spent its failures).",
		}, []string{"surface", "reason"}),
	}
	for _, s := range []string{SurfaceAPI, SurfaceDashboard, SurfaceProfiling} {
		for _, r := range []string{"wrong", "limited"} {
			g.failures.WithLabelValues(s, r)
		}
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(g.failures)
	}
	return g
}

// On reports whether an operator token is configured. Safe on nil.
func (g *Guard) On() bool { return g != nil && len(g.token) > 0 }

// Proxies returns the trusted proxies (nil: none). Safe on nil.
func (g *Guard) Proxies() *Proxies {
	if g == nil {
		return nil
	}
	return g.proxies
}

// Check decides one attempt of r, which gave the token given (empty: none)
// on surface. A wrong token takes one failure from the client address's
// budget and is logged (operator_auth_failed, with the address and the
// surface, never the guess); once the budget is spent every attempt from
// the address is Limited, the right token included, until the wait has
// passed. Safe on nil (Off).
func (g *Guard) Check(r *http.Request, surface, given string) (Verdict, time.Duration) {
	if !g.On() {
		return Off, 0
	}
	ctx, addr := r.Context(), g.proxies.ClientAddr(r)
	if g.limiter != nil {
		if spent, wait := g.limiter.Spent(ctx, ratelimit.OperatorAddr, addr); spent {
			return g.limited(ctx, surface, addr, wait)
		}
	}
	if subtle.ConstantTimeCompare([]byte(given), g.token) == 1 {
		return Allowed, 0
	}
	g.failures.WithLabelValues(surface, "wrong").Inc()
	g.logger.LogAttrs(ctx, slog.LevelWarn, "operator_auth_failed", slog.String("addr", addr), slog.String("surface", surface),
		slog.Bool("token_given", given != ""), slog.String("path", r.URL.Path))
	if g.limiter != nil {
		if ok, wait := g.limiter.Allow(ctx, ratelimit.OperatorAddr, addr); !ok {
			// Spent meanwhile by attempts checked at the same moment.
			return g.limited(ctx, surface, addr, wait)
		}
	}
	return Wrong, 0
}

func (g *Guard) limited(ctx context.Context, surface, addr string, wait time.Duration) (Verdict, time.Duration) {
	g.failures.WithLabelValues(surface, "limited").Inc()
	g.logger.LogAttrs(ctx, slog.LevelWarn, "operator_auth_limited", slog.String("addr", addr), slog.String("surface", surface),
		slog.Duration("retry_after", wait))
	return Limited, wait
}
