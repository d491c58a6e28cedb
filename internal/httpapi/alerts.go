package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/telemetry"
)

// AlertBook is what the alert routes need of the alert evaluator.
type AlertBook interface {
	Alerts() []telemetry.Alert
	Ack(id, by string) (telemetry.Alert, error)
}

type alertsOutput struct {
	Body struct {
		Alerts []telemetry.Alert `json:"alerts" doc:"pending and firing alerts (firing first), then resolved ones, newest first"`
	}
}

type alertAckInput struct {
	ID   string `path:"id" maxLength:"200"`
	Body *struct {
		By string `json:"by,omitempty" maxLength:"200" doc:"who takes the alert (recorded)"`
	} `required:"false"`
}

type alertOutput struct {
	Body telemetry.Alert
}

// registerAlerts adds the operator's alert routes: the list and the
// acknowledgement.
func (s *server) registerAlerts(api huma.API) {
	if s.Alerts == nil {
		return
	}
	register(api, s.help, AdminSecured(huma.Operation{
		OperationID: "list-alerts", Method: http.MethodGet, Path: "/v1/admin/alerts",
		Summary: "Alerts of the built-in evaluator: pending, firing and recently resolved (OPERATOR)",
		Errors:  []int{401},
	}), func(ctx context.Context, _ *struct{}) (*alertsOutput, error) {
		out := &alertsOutput{}
		out.Body.Alerts = s.Alerts.Alerts()
		return out, nil
	})
	register(api, s.help, AdminSecured(huma.Operation{
		OperationID: "ack-alert", Method: http.MethodPost, Path: "/v1/admin/alerts/{id}/ack",
		Summary: "Acknowledge an alert: an operator is on it (OPERATOR)",
		Errors:  []int{400, 401, 404, 422},
	}), func(ctx context.Context, in *alertAckInput) (*alertOutput, error) {
		by := "operator"
		if in.Body != nil && in.Body.By != "" {
			by = in.Body.By
		}
		a, err := s.Alerts.Ack(in.ID, by)
		if errors.Is(err, telemetry.ErrNotFound) {
			return nil, huma.Error404NotFound("no alert " + in.ID + " (ids come from GET /v1/admin/alerts)")
		}
		if err != nil {
			return nil, err
		}
		return &alertOutput{Body: a}, nil
	})
}
