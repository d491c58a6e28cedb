package httpapi

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/domain"
	"hmp/internal/ratelimit"
)

// clientAddr is the address a request came from, without its port: the
// key of the per-address limits. (Behind a proxy every client shares the
// proxy's address; trusting X-Forwarded-For is a proxy's setting to add.)
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limitAnonymous applies the per-address limits of login and signup before
// anything else is done for them (no body read, no bcrypt): a flood from
// one address costs a map lookup per request.
func limitAnonymous(l *ratelimit.Limiter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if l == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var name string
			switch {
			case r.Method == http.MethodPost && r.URL.Path == "/v1/auth/login":
				name = ratelimit.LoginAddr
			case r.Method == http.MethodPost && r.URL.Path == "/v1/auth/signup":
				name = ratelimit.SignupAddr
			default:
				next.ServeHTTP(w, r)
				return
			}
			if ok, wait := l.Allow(r.Context(), name, clientAddr(r)); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(wait)))
				writeProblem(w, http.StatusTooManyRequests, "too many requests from this address; retry after the time in Retry-After")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// tooMany is the 429 answer of a spent budget.
func tooMany(detail string, wait time.Duration) error {
	return huma.ErrorWithHeaders(huma.NewError(http.StatusTooManyRequests, detail),
		http.Header{"Retry-After": {strconv.Itoa(ratelimit.RetryAfterSeconds(wait))}})
}

// limitLogin applies the per-email login limit: password guessing against
// one account is slowed whatever the addresses it comes from.
func (s *server) limitLogin(ctx context.Context, email string) error {
	if s.Limiter == nil {
		return nil
	}
	key := strings.ToLower(strings.TrimSpace(email))
	if ok, wait := s.Limiter.Allow(ctx, ratelimit.LoginEmail, key); !ok {
		return tooMany("too many login attempts for this email; retry after the time in Retry-After", wait)
	}
	return nil
}

// limitWrite applies the per-user and per-organization write limits to an
// authenticated request that changes something. A spent budget answers 429
// here, before the body is decoded.
func (s *server) limitWrite(api huma.API, ctx huma.Context, actor domain.Actor) bool {
	method := ctx.Operation().Method
	if s.Limiter == nil || method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions {
		return true
	}
	refuse := func(detail string, wait time.Duration) bool {
		ctx.SetHeader("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(wait)))
		_ = huma.WriteErr(api, ctx, http.StatusTooManyRequests, detail)
		return false
	}
	if ok, wait := s.Limiter.Allow(ctx.Context(), ratelimit.WritesUser, actor.UserID.String()); !ok {
		return refuse("too many writes by this user; retry after the time in Retry-After", wait)
	}
	if ok, wait := s.Limiter.Allow(ctx.Context(), ratelimit.WritesOrg, actor.OrgID.String()); !ok {
		return refuse("too many writes by this organization; retry after the time in Retry-After", wait)
	}
	return true
}
