package httpapi

import (
	"context"
	"strings"

	"github.com/danielgtaylor/huma/v2"

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

// authenticate verifies the bearer token of every secured operation and
// puts its actor into the context; any failure answers 401.
func (s *server) authenticate(api huma.API) func(ctx huma.Context, next func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if len(ctx.Operation().Security) == 0 {
			next(ctx)
			return
		}
		h := ctx.Header("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="hmp"`)
			_ = huma.WriteErr(api, ctx, 401, "missing bearer token in the Authorization header")
			return
		}
		actor, err := s.Tokens.Verify(strings.TrimSpace(token))
		if err != nil {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="hmp", error="invalid_token"`)
			_ = huma.WriteErr(api, ctx, 401, message(err, domain.ErrUnauthenticated))
			return
		}
		if !s.limitWrite(api, ctx, actor) {
			return
		}
		next(huma.WithValue(ctx, actorKey{}, actor))
	}
}
