package httpapi

import (
	"context"
	"errors"

	"github.com/danielgtaylor/huma/v2"
)

// register is huma.Register with the one error adapter of the edge
// (pkgsite's errorHandler): a handler returns the errors of the domain
// model as they come, and register maps them to problem+json with
// Problem. A huma error a handler made itself (a 429 with its
// Retry-After, an operator route's own 404) passes through unchanged.
// Every API route registers through it, so no error, however plain,
// reaches huma, which would show its text in a 500.
func register[I, O any](api huma.API, h *Helpers, op huma.Operation, handler func(context.Context, *I) (*O, error)) {
	huma.Register(api, op, func(ctx context.Context, in *I) (*O, error) {
		out, err := handler(ctx, in)
		if err != nil {
			return nil, h.Problem(ctx, err)
		}
		return out, nil
	})
}

// isStatusError reports whether err is already an answer (a huma error).
func isStatusError(err error) bool {
	var se huma.StatusError
	return errors.As(err, &se)
}
