package httpapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"hmp/internal/auth"
	"hmp/internal/domain"
	"hmp/internal/tenancy"
)

// Forwarder hands an admitted, authenticated API request to the service
// that owns it and writes that service's answer (internal/gateway). sess
// is the caller's checked session (nil for the anonymous routes), which
// the service trusts instead of checking the token again. retryable is
// the route's declared idempotency (Retryable): whether the service
// honours the request's Idempotency-Key, so that a try that got no answer
// may be repeated.
type Forwarder interface {
	Forward(ctx context.Context, sess *auth.Session, retryable bool, w http.ResponseWriter, r *http.Request)
}

type vouchedKey struct{}

// vouched is what a service was told by a verified envelope.
type vouched struct{ sess *auth.Session }

// Vouched marks ctx as the context of a request the gateway vouched for
// in a signed envelope (internal/rpc checked the signature and the
// deadline): sess is the caller's session the gateway checked (nil: an
// anonymous route). Such a request was authenticated, rate limited and
// admitted by the gateway: the service neither checks its token again nor
// makes it wait for a slot; it runs under the envelope's deadline. Only
// the rpc server may call it, with what it verified.
func Vouched(ctx context.Context, sess *auth.Session) context.Context {
	return context.WithValue(ctx, vouchedKey{}, vouched{sess})
}

// vouchedFor returns what Vouched put into ctx.
func vouchedFor(ctx context.Context) (vouched, bool) {
	v, ok := ctx.Value(vouchedKey{}).(vouched)
	return v, ok
}

// admitVouched takes a vouched request past admission: its session
// stands as checked (authenticate takes it, as it takes admit's), and it
// holds no slot (the gateway's admission bounded it).
func admitVouched(r *http.Request) bool {
	v, ok := vouchedFor(r.Context())
	if !ok {
		return false
	}
	if st := stateOf(r.Context()); st != nil && v.sess != nil {
		st.sess, st.pre = *v.sess, true
	}
	return true
}

// PropertyChecker answers whether the actor may see a property (a
// tenancy fact).
type PropertyChecker interface {
	Property(ctx context.Context, actor domain.Actor, id domain.ID) (tenancy.Property, error)
}

func (s *server) properties() PropertyChecker {
	if s.Properties != nil {
		return s.Properties
	}
	return s.Tenancy
}

// forward is the gateway's last middleware: past authentication, rate
// limits and admission, the operation is not run here but forwarded.
// The operational routes stay local.
func (s *server) forward(ctx huma.Context, next func(huma.Context)) {
	if slices.Contains(ctx.Operation().Tags, "operations") {
		next(ctx)
		return
	}
	var sess *auth.Session
	if len(ctx.Operation().Security) > 0 && !isAdminOp(ctx.Operation()) {
		if st, ok := session(ctx.Context()); ok {
			sess = &st
		}
	}
	r, w := humago.Unwrap(ctx)
	// The forwarder logs its own failures and the service its server
	// errors, with the same request id: not a third time here.
	quietly(r)
	s.Forward.Forward(ctx.Context(), sess, IsRetryable(ctx.Operation()), w, r)
}
