package httpapi

import (
	"context"

	"hmp/internal/auth"
)

// reqState is what the middleware learns of one request, kept in one
// allocation that is also the request's context (a cached read is a few
// microseconds: a context value, a holder and a boxed session per fact
// cost as much as the read): requestLog makes it, the inner layers fill
// it in.
type reqState struct {
	// Context is the request's context as requestLog received it; the
	// state is the value of stateKey on top of it.
	context.Context
	id string
	// ids holds the request id as a header value (one slice serves the
	// request's and the response's header).
	ids [1]string
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

// Value answers stateKey with st, anything else from the context below.
func (st *reqState) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return st
	}
	return st.Context.Value(key)
}

// stateOf returns the request's state (nil outside requestLog).
func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}
