package httpapi_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"hmp/internal/httpapi"
	"hmp/internal/logtest"
	"hmp/internal/operator"
	"hmp/internal/telemetry"
)

// failingBook is an alert book whose acknowledgement fails with text
// that must stay in the process (a host, a password).
type failingBook struct{}

const secret = "dial tcp 10.0.0.7:5432: password=hunter2"

func (failingBook) Alerts() []telemetry.Alert { return nil }
func (failingBook) Ack(string, string) (telemetry.Alert, error) {
	return telemetry.Alert{}, errors.New(secret)
}

// An internal error a handler returns as it is reaches no body: the
// adapter answers 500 with a fixed sentence and the request id, and
// logs the error under that id. (Before the adapter, huma answered such
// an error with its text in errors[0].message.)
func TestInternalErrorTextNeverInBody(t *testing.T) {
	t.Parallel()
	logs := &logtest.Buffer{}
	h := httpapi.New(httpapi.Deps{
		Operator: operator.New(operator.Config{Token: token}),
		Alerts:   failingBook{}, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	r := httptest.NewRequest("POST", "/v1/admin/alerts/a1/ack", strings.NewReader(`{}`))
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Request-Id", "req-edge-1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body := w.Body.String()
	if w.Code != 500 {
		t.Fatalf("%d %s, want 500", w.Code, body)
	}
	if strings.Contains(body, "hunter2") || strings.Contains(body, "10.0.0.7") {
		t.Fatalf("error text in the body: %s", body)
	}
	var p struct{ Detail string }
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Detail != "internal error (request id req-edge-1)" {
		t.Fatalf("detail %q (%v), want the fixed sentence with the request id", p.Detail, err)
	}
	if l := logs.String(); !strings.Contains(l, "hunter2") || !strings.Contains(l, "request_id=req-edge-1") {
		t.Fatalf("the error is not logged with the request id:\n%s", l)
	}
}
