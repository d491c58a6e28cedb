package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/domain"
	"hmp/internal/idempotency"
	"hmp/internal/postgres"
)

// The one owner of Idempotency-Key at the edge. For an operation that
// honours a key (idempotency.Routes) and a request that carries one:
//
//  1. the key is checked (422 on header.Idempotency-Key) and reserved in
//     its own committed statement, scoped to the caller and the route as
//     requested; a key already answered replays that answer (same body)
//     or is 409 (other body); a key still held by another request is 409;
//  2. the operation runs with the reservation's Mark as the request's
//     postgres.BeforeCommit hook: every transaction the services commit
//     for the request marks the key written in that same commit;
//  3. a 2xx answer is recorded for replay; a 4xx releases the key (a
//     refused request is not remembered); another answer releases it
//     only if nothing was written.
//
// A create whose answer was lost (the gateway's try timed out after the
// commit) thus finds, when retried, its recorded answer; if the process
// died between the commit and the record, the key stays in progress (409)
// and is never run again: nothing is written twice.

// keyHeader is the request header of the key; replayedHeader marks an
// answer replayed from a record.
const (
	keyHeader      = "Idempotency-Key"
	replayedHeader = "Idempotency-Replayed"
)

// documentKey adds the Idempotency-Key header to the OpenAPI document of
// every operation that honours it.
func documentKey(_ *huma.OpenAPI, op *huma.Operation) {
	if !idempotency.Declared(op.Method, op.Path) {
		return
	}
	minLen, maxLen := 1, idempotency.MaxKeyLength
	op.Parameters = append(op.Parameters, &huma.Param{
		Name: keyHeader, In: "header",
		Description: "Retry-safe writes: the same key and body within 24 h return the original answer (with " + replayedHeader +
			": true); the same key with another body is 409. Printable ASCII, at most 255 characters.",
		Schema: &huma.Schema{Type: "string", MinLength: &minLen, MaxLength: &maxLen, Pattern: "^[ -~]+$"},
	})
}

// idempotent is the huma middleware that applies Idempotency-Key; it runs
// after authentication, where the operation's own handler would.
func (s *server) idempotent(api huma.API) func(ctx huma.Context, next func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		value := ctx.Header(keyHeader)
		if value == "" || !idempotency.Declared(op.Method, op.Path) {
			next(ctx)
			return
		}
		if err := idempotency.ValidKey(value); err != nil {
			_ = huma.WriteErr(api, ctx, http.StatusUnprocessableEntity, "validation failed",
				&huma.ErrorDetail{Location: "header." + keyHeader, Message: err.Error()})
			return
		}
		body, err := io.ReadAll(ctx.BodyReader())
		if err != nil {
			_ = huma.WriteErr(api, ctx, http.StatusBadRequest, "could not read request body")
			return
		}
		actor := s.help.Actor(ctx.Context())
		u := ctx.URL()
		key := idempotency.Key{OrgID: actor.OrgID, UserID: actor.UserID, Route: op.Method + " " + u.Path, Value: value}
		hash := idempotency.Hash(body)
		res, rec, err := s.Idempotency.Reserve(ctx.Context(), key, hash)
		if err != nil {
			s.writeError(api, ctx, err)
			return
		}
		if res == nil {
			if !rec.Matches(hash) {
				s.writeError(api, ctx, domain.Conflictf("this Idempotency-Key was used with a different request body"))
				return
			}
			replay(ctx, rec)
			return
		}
		rc := &recordingContext{humaContext: huma.WithContext(ctx, postgres.WithBeforeCommit(ctx.Context(), res.Mark)),
			body: body, header: http.Header{}}
		next(rc)
		s.settle(ctx.Context(), res, rc)
	}
}

// settle records or releases the reservation once the operation answered.
func (s *server) settle(ctx context.Context, res *idempotency.Reservation, rc *recordingContext) {
	ctx = context.WithoutCancel(ctx)
	status := rc.status
	if status == 0 {
		status = http.StatusOK
	}
	var err error
	switch {
	case status >= 200 && status < 300:
		err = res.Complete(ctx, status, rc.header, rc.out.Bytes())
	case status >= 400 && status < 500:
		_, err = res.Release(ctx, false)
	default:
		var released bool
		if released, err = res.Release(ctx, true); err == nil && !released {
			s.Logger.Warn("idempotency_key_kept", "status", status, "request_id", RequestID(ctx), "org_id", orgOf(ctx))
		}
	}
	if err != nil {
		// The answer stands; the key stays in progress (409 to a retry).
		s.Logger.Error("idempotency_record_failed", "error", err.Error(), "request_id", RequestID(ctx), "org_id", orgOf(ctx))
	}
}

// replay answers a request with the recorded answer of its key.
func replay(ctx huma.Context, rec idempotency.Record) {
	header := rec.Header
	if header == nil { // a record from before headers were kept: a finance create
		header = http.Header{"Content-Type": {"application/json"}, "X-Consistency-Token": {domain.Token{TxID: rec.TxID}.String()}}
		if v, ok := versionOf(rec.Response); ok {
			header.Set("ETag", strconv.Quote(strconv.Itoa(v)))
		}
	}
	for k, vs := range header {
		for _, v := range vs {
			ctx.AppendHeader(k, v)
		}
	}
	ctx.SetHeader(replayedHeader, "true")
	ctx.SetStatus(rec.Status)
	_, _ = ctx.BodyWriter().Write(rec.Response)
}

// writeError writes err, mapped by Problem, from a middleware.
func (s *server) writeError(api huma.API, ctx huma.Context, err error) {
	err = s.help.Problem(ctx.Context(), err)
	var he huma.HeadersError
	if errors.As(err, &he) {
		for k, vs := range he.GetHeaders() {
			for _, v := range vs {
				ctx.AppendHeader(k, v)
			}
		}
	}
	var m *huma.ErrorModel
	if !errors.As(err, &m) {
		_ = huma.WriteErr(api, ctx, http.StatusInternalServerError, "internal error")
		return
	}
	details := make([]error, len(m.Errors))
	for i, d := range m.Errors {
		details[i] = d
	}
	_ = huma.WriteErr(api, ctx, m.Status, m.Detail, details...)
}

// humaContext names the embedded huma.Context (whose own field name
// would shadow its Context method).
type humaContext = huma.Context

// recordingContext hands the operation the body already read and keeps a
// copy of its answer: status, headers and body.
type recordingContext struct {
	humaContext
	body   []byte
	status int
	header http.Header
	out    bytes.Buffer
}

func (c *recordingContext) Unwrap() huma.Context  { return c.humaContext }
func (c *recordingContext) BodyReader() io.Reader { return bytes.NewReader(c.body) }

func (c *recordingContext) SetStatus(code int) {
	c.status = code
	c.humaContext.SetStatus(code)
}

func (c *recordingContext) Status() int { return c.humaContext.Status() }

func (c *recordingContext) SetHeader(name, value string) {
	c.header.Set(name, value)
	c.humaContext.SetHeader(name, value)
}

func (c *recordingContext) AppendHeader(name, value string) {
	c.header.Add(name, value)
	c.humaContext.AppendHeader(name, value)
}

func (c *recordingContext) BodyWriter() io.Writer {
	return io.MultiWriter(c.humaContext.BodyWriter(), &c.out)
}

// versionOf returns the "version" of a recorded row.
func versionOf(body []byte) (int, bool) {
	var row struct {
		Version *int `json:"version"`
	}
	if json.Unmarshal(body, &row) != nil || row.Version == nil {
		return 0, false
	}
	return *row.Version, true
}
