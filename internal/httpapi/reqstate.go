package httpapi

import (
	"context"

	"hmp/internal/auth"
)

// reqState is what the middleware learns of one request, kept in one
// allocation and one context value (a cached read is a few microseconds:
// a context value, a holder and a boxed session per fact cost as much as
// the read): requestLog makes it, the inner layers fill it in.
type reqState struct {
	id string
	// pattern is the route the mux matched (noteRoute).
	pattern string
	// quiet marks an expected 5xx that is not logged (quietly).
	quiet bool
	// sess is the caller's session: checked by admit before the request
	// takes a slot (pre), accepted by authenticate for a secured
	// operation (authed: the request's actor).
	sess        auth.Session
	pre, authed bool
	sw          statusWriter
}

type stateKey struct{}

// stateOf returns the request's state (nil outside requestLog).
func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}
