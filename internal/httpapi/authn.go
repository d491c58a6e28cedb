package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/auth"
	"hmp/internal/domain"
)

// Actor returns the authenticated caller of a request handled by an
// operation with bearer security.
func (h *Helpers) Actor(ctx context.Context) domain.Actor {
	if st := stateOf(ctx); st != nil && st.authed {
		return st.sess.Actor
	}
	return domain.Actor{}
}

// Secured marks an operation as requiring a bearer token.
func Secured(op huma.Operation) huma.Operation {
	op.Security = []map[string][]string{{"bearer": {}}}
	if op.Errors == nil {
		op.Errors = []int{400, 401, 404, 422}
	}
	return op
}

// authenticate checks the bearer token of every secured operation (or
// takes the session admit already checked) and puts its actor and session
// into the context; an invalid, revoked or disabled user's token answers
// 401, a failure to check it (database down) 503.
func (s *server) authenticate(api huma.API) func(ctx huma.Context, next func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if len(ctx.Operation().Security) == 0 {
			next(ctx)
			return
		}
		if isAdminOp(ctx.Operation()) {
			if s.checkAdmin(api, ctx) {
				next(ctx)
			}
			return
		}
		st := stateOf(ctx.Context())
		if st == nil {
			// Outside requestLog (never in New's chain): a state of its own.
			st = &reqState{}
			ctx = huma.WithValue(ctx, stateKey{}, st)
		}
		sess, ok := st.sess, st.pre
		if !ok {
			h := ctx.Header("Authorization")
			token, ok := strings.CutPrefix(h, "Bearer ")
			if !ok || token == "" {
				ctx.SetHeader("WWW-Authenticate", `Bearer realm="hmp"`)
				_ = huma.WriteErr(api, ctx, 401, "missing bearer token in the Authorization header")
				return
			}
			var err error
			sess, err = s.Tokens.Check(ctx.Context(), strings.TrimSpace(token))
			if errors.Is(err, domain.ErrUnauthenticated) {
				ctx.SetHeader("WWW-Authenticate", `Bearer realm="hmp", error="invalid_token"`)
				_ = huma.WriteErr(api, ctx, 401, message(err, domain.ErrUnauthenticated))
				return
			}
			if err != nil {
				ctx.SetHeader("Retry-After", "1")
				_ = huma.WriteErr(api, ctx, http.StatusServiceUnavailable, "could not check the token; retry shortly")
				s.Logger.Warn("http_unavailable", "error", err.Error(), "request_id", RequestID(ctx.Context()))
				return
			}
		}
		st.sess, st.authed = sess, true // the request log now names the org
		if !s.limitWrite(api, ctx, sess.Actor) {
			return
		}
		next(ctx)
	}
}

// session returns the checked token of the request.
func session(ctx context.Context) (auth.Session, bool) {
	if st := stateOf(ctx); st != nil && st.authed {
		return st.sess, true
	}
	return auth.Session{}, false
}
