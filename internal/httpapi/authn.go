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

type actorKey struct{}

// Actor returns the authenticated caller of a request handled by an
// operation with bearer security.
func (h *Helpers) Actor(ctx context.Context) domain.Actor {
	a, _ := ctx.Value(actorKey{}).(domain.Actor)
	return a
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
		sess, ok := preAuthenticated(ctx.Context())
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
		noteOrg(ctx.Context(), sess.Actor.OrgID.String())
		if !s.limitWrite(api, ctx, sess.Actor) {
			return
		}
		next(huma.WithValue(huma.WithValue(ctx, actorKey{}, sess.Actor), sessionKey{}, sess))
	}
}

type sessionKey struct{}

// session returns the checked token of the request.
func session(ctx context.Context) (auth.Session, bool) {
	sess, ok := ctx.Value(sessionKey{}).(auth.Session)
	return sess, ok
}
