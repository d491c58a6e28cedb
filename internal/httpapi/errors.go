package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/validation"

	"hmp/internal/domain"
)

// Problem maps an error of the domain model to its problem+json answer;
// register calls it for every handler, so handlers only return errors. An
// error that is an answer already (a huma error) is returned as it is.
// Server errors are logged with the request id; client errors are not. A
// 500 never shows the error's text: its detail is a fixed sentence with
// the request id, which finds the logged error.
func (h *Helpers) Problem(ctx context.Context, err error) error {
	if isStatusError(err) {
		return err
	}
	var (
		verr  *domain.ValidationError
		nferr *domain.NotFoundError
	)
	switch {
	case errors.As(err, &verr):
		details := make([]error, len(verr.Fields))
		for i, f := range verr.Fields {
			details[i] = &huma.ErrorDetail{Location: f.Field, Message: f.Reason, Value: f.Value}
		}
		return huma.Error422UnprocessableEntity("validation failed", details...)
	case errors.As(err, &nferr):
		return huma.Error404NotFound(nferr.Error(), &huma.ErrorDetail{Location: nferr.Field, Message: nferr.What + " not found", Value: nferr.Value})
	case errors.Is(err, domain.ErrNotFound):
		return huma.Error404NotFound(safeMessage(err, domain.ErrNotFound))
	case errors.Is(err, domain.ErrConflict):
		return huma.Error409Conflict(safeMessage(err, domain.ErrConflict))
	case errors.Is(err, domain.ErrPreconditionFailed):
		return huma.Error412PreconditionFailed(message(err, domain.ErrPreconditionFailed))
	case errors.Is(err, domain.ErrForbidden):
		return huma.Error403Forbidden(message(err, domain.ErrForbidden))
	case errors.Is(err, domain.ErrUnauthenticated):
		return huma.Error401Unauthorized(message(err, domain.ErrUnauthenticated))
	case errors.Is(err, domain.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), dependencyDown(err):
		// The cause is logged once, with the request id; the client gets
		// a plain problem: driver text (hosts, SQL, constraint names)
		// never leaves the process.
		h.logger.Warn("http_unavailable", "error", err.Error(), "request_id", RequestID(ctx), "org_id", orgOf(ctx))
		detail := "a dependency is unavailable or the request ran out of time; retry shortly"
		if errors.Is(err, domain.ErrUnavailable) && !fromDriver(err) && !joinsCause(err) {
			detail = message(err, domain.ErrUnavailable)
		}
		return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable(detail), http.Header{"Retry-After": {"1"}})
	case errors.Is(err, context.Canceled):
		return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("request canceled"), http.Header{"Retry-After": {"1"}})
	}
	h.logger.Error("http_internal_error", "error", err.Error(), "request_id", RequestID(ctx), "org_id", orgOf(ctx))
	return huma.Error500InternalServerError(internalError(ctx))
}

// internalError is the detail of a 500: a fixed sentence and the request
// id (also in the X-Request-Id header) under which the cause is logged.
func internalError(ctx context.Context) string {
	if id := RequestID(ctx); id != "" {
		return "internal error (request id " + id + ")"
	}
	return "internal error"
}

// message returns the caller-facing text of a domain error: what follows
// the sentinel ("conflict: <message>"), or the sentinel itself.
func message(err, sentinel error) string {
	s := err.Error()
	if i := strings.LastIndex(s, sentinel.Error()+": "); i >= 0 {
		return s[i+len(sentinel.Error())+2:]
	}
	return sentinel.Error()
}

// safeMessage is message, or only the sentinel when err joins it with a
// driver cause whose text must not reach the client.
func safeMessage(err, sentinel error) string {
	if joinsCause(err) || fromDriver(err) {
		return sentinel.Error()
	}
	return message(err, sentinel)
}

// problemDetails is a response transformer that finishes the errors of
// huma's own request validation the way API.md wants them: a missing
// required field is located at the field ("body.amountCents"), not at the
// object holding it; a number the schema accepts but the Go field cannot
// hold (1e3, 100.0 for an integer) is located at its field, without Go
// type names; and a detail never echoes a whole request body (huma puts
// the body or the enclosing object in value, which may carry a password)
// nor the value of a password field.
func problemDetails(_ huma.Context, _ string, v any) (any, error) {
	m, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	for _, d := range m.Errors {
		if d == nil {
			continue
		}
		if field, ok := requiredField(d.Message); ok {
			d.Location += "." + field
			d.Value = nil
		}
		if field, want, ok := decodeField(d.Message); ok && d.Location == "body" {
			d.Location, d.Message, d.Value = "body."+field, "expected "+want, nil
		}
		switch d.Value.(type) {
		case map[string]any, []any:
			d.Value = nil
		}
		d.Value = finite(d.Value)
		if d.Location == "body" || strings.HasSuffix(d.Location, ".password") {
			d.Value = nil
		}
	}
	return m, nil
}

// requiredField returns the property a huma "expected required property X
// to be present" message names.
func requiredField(msg string) (string, bool) {
	prefix, suffix, _ := strings.Cut(validation.MsgExpectedRequiredProperty, "%s")
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return "", false
	}
	field, ok := strings.CutSuffix(rest, suffix)
	return field, ok && field != ""
}

// decodeField returns the JSON field and the kind of value wanted from an
// encoding/json type error ("json: cannot unmarshal number 1e3 into Go
// struct field revenueCreate.amountCents of type int64").
func decodeField(msg string) (field, want string, ok bool) {
	if !strings.HasPrefix(msg, "json: cannot unmarshal ") {
		return "", "", false
	}
	_, rest, ok := strings.Cut(msg, " into Go struct field ")
	if !ok {
		return "", "", false
	}
	path, typ, ok := strings.Cut(rest, " of type ")
	if !ok {
		return "", "", false
	}
	if _, field, ok = strings.Cut(path, "."); !ok || field == "" {
		return "", "", false
	}
	want = "a value of type " + typ
	if strings.HasPrefix(typ, "int") || strings.HasPrefix(typ, "uint") {
		want = "integer"
	}
	return field, want, true
}
