package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"hmp/internal/domain"
	"hmp/internal/idempotency"
	"hmp/internal/postgres"
)

// Idempotency-Key is honoured in one place, here, for every operation the
// route table declares Retryable: the creates and state changes a client
// may send again after a lost answer. The services know nothing of keys;
// the key is marked used inside the write's own transaction through a
// postgres.BeforeCommit hook, so that "written" and "key used" commit
// together. The gateway retries exactly these operations (when they carry
// a key), never a request because of its header alone.

// retryableKey is the operation metadata flag set by Retryable.
const retryableKey = "hmp.retryable"

// Retryable declares op a write that honours Idempotency-Key: same key
// and same body within 24 h replay the recorded answer (with
// Idempotency-Replayed: true), another body is 409, a key that is not
// printable ASCII or longer than 255 characters is 422 at
// header.Idempotency-Key.
func Retryable(op huma.Operation) huma.Operation {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[retryableKey] = true
	maxLen := idempotency.MaxKeyLength
	op.Parameters = append(op.Parameters, &huma.Param{
		Name: "Idempotency-Key", In: "header",
		Description: "Retry-safe writes: the same key and body within 24 h return the original response " +
			"(with Idempotency-Replayed: true); another body answers 409",
		Schema: &huma.Schema{Type: "string", MaxLength: &maxLen, Pattern: "^[ -~]*$", PatternDescription: "printable ASCII"},
	})
	return op
}

// IsRetryable reports whether op was declared Retryable.
func IsRetryable(op *huma.Operation) bool {
	v, _ := op.Metadata[retryableKey].(bool)
	return v
}

// replayedHeaders are the headers of an answer that a replay repeats.
var replayedHeaders = []string{"Content-Type", "Location", "ETag", "X-Consistency-Token"}

// badKey returns why key is refused, or "".
func badKey(key string) string {
	if len(key) > idempotency.MaxKeyLength {
		return "must be at most 255 characters"
	}
	for i := 0; i < len(key); i++ {
		if key[i] < ' ' || key[i] > '~' {
			return "must be printable ASCII"
		}
	}
	return ""
}

// idempotent is the huma middleware behind Retryable (see above). On the
// gateway (Forward) it only checks the key: the service that runs the
// write honours it.
func (s *server) idempotent(api huma.API) func(ctx huma.Context, next func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		if !IsRetryable(op) {
			next(ctx)
			return
		}
		key := ctx.Header("Idempotency-Key")
		if why := badKey(key); why != "" {
			var value any
			if len(key) <= idempotency.MaxKeyLength {
				value = []byte(key) // base64: the bytes may not be text
			}
			_ = huma.WriteErr(api, ctx, http.StatusUnprocessableEntity, "validation failed",
				&huma.ErrorDetail{Location: "header.Idempotency-Key", Message: why, Value: value})
			return
		}
		actor := s.help.Actor(ctx.Context())
		if key == "" || s.Idempotency == nil || s.Forward != nil || actor.UserID == (domain.ID{}) {
			next(ctx)
			return
		}
		r, w := humago.Unwrap(ctx)
		body, _ := ctx.Context().Value(bodyKey{}).([]byte)
		k := idempotency.Key{OrgID: actor.OrgID, UserID: actor.UserID, Route: r.Method + " " + r.URL.Path, Value: key}
		res, ans, err := s.Idempotency.Reserve(ctx.Context(), k, idempotency.Hash(canonicalJSON(body)))
		if err != nil {
			s.writeError(api, ctx, err)
			return
		}
		if ans != nil {
			replay(w, ans)
			return
		}
		finishCtx := context.WithoutCancel(ctx.Context())
		// A handler that panics (recoverer answers 500) releases the key,
		// or records the 500 if it had committed.
		defer func() { _ = res.Finish(finishCtx, idempotency.Answer{Status: http.StatusInternalServerError}, false) }()
		rec := &answerRecorder{header: http.Header{}}
		rctx := postgres.WithBeforeCommit(ctx.Context(), res.Mark)
		next(humago.NewContext(op, r.WithContext(rctx), rec))
		a := rec.answer()
		if err := res.Finish(finishCtx, a, a.Status < 400); err != nil {
			// The write (if any) stands and the client gets its answer; a
			// retry finds the key committed without an answer (503).
			s.Logger.Warn("idempotency_finish_failed", "error", err.Error(), "request_id", RequestID(ctx.Context()), "org_id", orgOf(ctx.Context()))
		}
		rec.writeTo(w)
	}
}

// writeError answers err of a reservation the way handlers answer theirs.
func (s *server) writeError(api huma.API, ctx huma.Context, err error) {
	perr := s.help.Problem(ctx.Context(), err)
	var se huma.StatusError
	if !errors.As(perr, &se) {
		se = huma.Error500InternalServerError(internalError(ctx.Context()))
	}
	var he huma.HeadersError
	if errors.As(perr, &he) {
		for name, values := range he.GetHeaders() {
			for _, v := range values {
				ctx.AppendHeader(name, v)
			}
		}
	}
	_ = huma.WriteErr(api, ctx, se.GetStatus(), se.Error())
}

// canonicalJSON is body with insignificant differences (spacing, key
// order) removed, so that a resent body matches however it was encoded;
// a body that is not JSON is taken as is.
func canonicalJSON(body []byte) []byte {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

func replay(w http.ResponseWriter, a *idempotency.Answer) {
	for name, values := range a.Header {
		w.Header()[http.CanonicalHeaderKey(name)] = values
	}
	w.Header().Set("Idempotency-Replayed", "true")
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body)
}

// answerRecorder holds a handler's answer until it is recorded, so that a
// client never has an answer its key would not replay.
type answerRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *answerRecorder) Header() http.Header { return r.header }

func (r *answerRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *answerRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *answerRecorder) answer() idempotency.Answer {
	a := idempotency.Answer{Status: r.status, Header: http.Header{}, Body: r.body.Bytes()}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	for _, name := range replayedHeaders {
		if v := r.header.Values(name); len(v) > 0 {
			a.Header[name] = v
		}
	}
	return a
}

func (r *answerRecorder) writeTo(w http.ResponseWriter) {
	for name, values := range r.header {
		w.Header()[name] = values
	}
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(r.body.Bytes())
}
