package httpapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"hmp/internal/domain"
	"hmp/internal/tenancy"
)

// Forwarder hands an admitted, authenticated API request to the service
// that owns it and writes that service's answer (internal/gateway).
// retryable is the route's declared idempotency (Retryable): whether the
// service honours the request's Idempotency-Key, so that a try that got no
// answer may be repeated.
type Forwarder interface {
	Forward(ctx context.Context, actor *domain.Actor, retryable bool, w http.ResponseWriter, r *http.Request)
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
	var actor *domain.Actor
	if len(ctx.Operation().Security) > 0 && !isAdminOp(ctx.Operation()) {
		a := s.help.Actor(ctx.Context())
		actor = &a
	}
	r, w := humago.Unwrap(ctx)
	// The forwarder logs its own failures and the service its server
	// errors, with the same request id: not a third time here.
	quietly(r)
	s.Forward.Forward(ctx.Context(), actor, IsRetryable(ctx.Operation()), w, r)
}
