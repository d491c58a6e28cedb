package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/domain"
	"hmp/internal/tenancy"
)

type patchUserInput struct {
	ID   string `path:"id" format:"uuid"`
	Body struct {
		Role     *string `json:"role,omitempty" enum:"ADMIN,MANAGER"`
		Disabled *bool   `json:"disabled,omitempty"`
	}
}

// registerSessions adds the routes that end a user's or a token's powers:
// PATCH /v1/users/{id} (role, disabled) and POST /v1/auth/logout. Both
// take effect at once on this instance and within auth.DefaultMaxStale
// (2 s) on every other.
func (s *server) registerSessions(api huma.API) {
	h := s.help
	register(api, s.help, Retryable(Secured(huma.Operation{
		OperationID: "patchUser", Method: http.MethodPatch, Path: "/v1/users/{id}", Tags: []string{"users"},
		Summary: "Change a user's role or disable them (ADMIN)",
		Description: "A disabled user cannot log in and their tokens stop working, and a role change takes effect, " +
			"within 5 s on every instance.",
		Errors: []int{400, 401, 403, 404, 409, 422},
	})), func(ctx context.Context, in *patchUserInput) (*userOutput, error) {
		id, err := parseID("path.id", in.ID)
		if err != nil {
			return nil, err
		}
		var p tenancy.UserPatch
		if in.Body.Role != nil {
			r := domain.Role(*in.Body.Role)
			p.Role = &r
		}
		p.Disabled = in.Body.Disabled
		actor := h.Actor(ctx)
		u, err := s.Tenancy.UpdateUser(ctx, actor, id, p)
		if err != nil {
			return nil, err
		}
		s.Tokens.Forget(actor.OrgID, id)
		return &userOutput{Body: toUserBody(u)}, nil
	})

	register(api, s.help, Secured(huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/v1/auth/logout", Tags: []string{"auth"},
		Summary: "Revoke the token of this request", DefaultStatus: http.StatusNoContent,
		Description: "The token stops working within 5 s on every instance (at once on this one).",
		Errors:      []int{401},
	}), func(ctx context.Context, _ *struct{}) (*struct{}, error) {
		sess, ok := session(ctx)
		if !ok {
			return nil, domain.ErrUnauthenticated
		}
		if err := s.Tokens.Revoke(ctx, sess); err != nil {
			return nil, err
		}
		return nil, nil
	})
}
