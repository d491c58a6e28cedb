package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/settings"
)

// SettingsService holds the live settings (internal/settings.Service).
type SettingsService interface {
	Current() settings.State
	Update(ctx context.Context, c settings.Change, who settings.Who) (settings.State, error)
	History(ctx context.Context) ([]settings.Record, error)
}

type settingsOutput struct {
	Body settings.State
}

type settingsHistoryOutput struct {
	Body struct {
		Changes []settings.Record `json:"changes" doc:"newest first; the last 64"`
	}
}

type settingsPutInput struct {
	Operator string `header:"X-HMP-Operator" maxLength:"100" doc:"who is changing the settings, for the audit trail"`
	Body     settings.Change
	addr     string
}

// Resolve records the caller's address for the audit trail.
func (in *settingsPutInput) Resolve(ctx huma.Context) []error {
	in.addr = ctx.RemoteAddr()
	if host, _, err := net.SplitHostPort(in.addr); err == nil {
		in.addr = host
	}
	return nil
}

// registerSettings adds the live settings routes (when there is a
// service): read them, change them on every instance, and their audit
// trail.
func (s *server) registerSettings(api huma.API) {
	if s.Settings == nil {
		return
	}
	register(api, s.help, AdminSecured(huma.Operation{
		OperationID: "getSettings", Method: http.MethodGet, Path: "/v1/admin/settings",
		Summary: "The scaling settings in force on this instance, and their profile",
	}), func(ctx context.Context, _ *struct{}) (*settingsOutput, error) {
		return &settingsOutput{Body: s.Settings.Current()}, nil
	})
	register(api, s.help, AdminSecured(huma.Operation{
		OperationID: "putSettings", Method: http.MethodPut, Path: "/v1/admin/settings",
		Summary: "Switch a profile or single knobs, live, on every instance",
		Description: "Nil fields keep their value: the named profile's when profile is given, else the value in force. " +
			"The change travels over the bus to every instance; the answer comes once this instance applied it.",
		Errors: []int{400, 401, 422, 503},
	}), func(ctx context.Context, in *settingsPutInput) (*settingsOutput, error) {
		who := settings.Who{Operator: in.Operator, Addr: in.addr}
		if who.Operator == "" {
			who.Operator = "operator"
		}
		st, err := s.Settings.Update(ctx, in.Body, who)
		var verr *settings.ValidationError
		switch {
		case errors.As(err, &verr):
			details := make([]error, len(verr.Fields))
			for i, f := range verr.Fields {
				details[i] = &huma.ErrorDetail{Location: "body." + f.Field, Message: f.Reason, Value: f.Value}
			}
			return nil, huma.Error422UnprocessableEntity("invalid settings", details...)
		case err != nil:
			s.Logger.Error("settings_update_failed", "request_id", RequestID(ctx), "error", err.Error())
			return nil, huma.Error503ServiceUnavailable("the settings could not be changed; retry shortly (request id " + RequestID(ctx) + ")")
		}
		return &settingsOutput{Body: st}, nil
	})
	register(api, s.help, AdminSecured(huma.Operation{
		OperationID: "getSettingsHistory", Method: http.MethodGet, Path: "/v1/admin/settings/history",
		Summary: "Who changed the settings, from where, when, before and after",
		Errors:  []int{401, 503},
	}), func(ctx context.Context, _ *struct{}) (*settingsHistoryOutput, error) {
		h, err := s.Settings.History(ctx)
		if err != nil {
			s.Logger.Error("settings_history_failed", "request_id", RequestID(ctx), "error", err.Error())
			return nil, huma.Error503ServiceUnavailable("the settings history could not be read; retry shortly (request id " + RequestID(ctx) + ")")
		}
		out := &settingsHistoryOutput{}
		out.Body.Changes = h
		return out, nil
	})
}
