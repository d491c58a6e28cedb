// Package rpc carries calls between HMP's services over NATS
// request/reply, with the micro package of nats.go: each role registers a
// micro service whose endpoints listen in a queue group, so that NATS
// discovers the instances, spreads the calls over them, and keeps the
// per-endpoint stats (`nats micro stats hmp-finance`). It holds the two
// kinds of call the roles make: an HTTP request forwarded whole (the
// gateway's, as a signed binary envelope: envelope.go), and the small
// tenancy questions of the reports role.
//
// The callee runs under the caller's deadline: in the envelope, or in the
// Hmp-Deadline header of a tenancy question.
package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"hmp/internal/auth"
)

// Headers of a tenancy question and its answer.
const (
	HeaderDeadline = "Hmp-Deadline" // Unix nanoseconds
	// HeaderErrorKind names the domain error of a failed tenancy call.
	HeaderErrorKind = "Hmp-Error-Kind"
)

// Service names: one micro service per role, reached as hmp-<role>.
const (
	Finance = "finance"
	Reports = "reports"
)

// HTTPEndpoint is the endpoint of every service that takes forwarded HTTP
// requests.
const HTTPEndpoint = "http"

// Subject is where a service's endpoint listens:
// hmp.rpc.<service>.<endpoint>.
func Subject(service, endpoint string) string { return "hmp.rpc." + service + "." + endpoint }

// hopHeaders are meaningful for one connection only and are not forwarded
// (RFC 9110 7.6.1), nor is the length a body's copy recomputes.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true,
}

// Server is one role's micro service on a NATS connection.
type Server struct {
	nc     *nats.Conn
	svc    micro.Service
	name   string
	slots  chan struct{}
	logger *slog.Logger
	// calls counts the calls being handled, which Stop waits for.
	calls sync.WaitGroup
}

// NewServer registers the micro service hmp-<service>. maxInFlight bounds
// the calls handled at once (more wait in the subscription: back
// pressure); 0 means 256.
func NewServer(nc *nats.Conn, service, version string, maxInFlight int, logger *slog.Logger) (*Server, error) {
	if maxInFlight <= 0 {
		maxInFlight = 256
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name: "hmp-" + service, Version: version, QueueGroup: "hmp-" + service,
		Description: "HMP " + service + " role",
	})
	if err != nil {
		return nil, fmt.Errorf("micro service hmp-%s: %w", service, err)
	}
	return &Server{nc: nc, svc: svc, name: service, slots: make(chan struct{}, maxInFlight), logger: logger}, nil
}

// Stop unsubscribes every endpoint, so that calls go to the other
// instances, and waits for the calls being handled (each is bounded by its
// caller's deadline): what closes after the server (the database pool)
// is still there for a call that committed a write and records its
// idempotent answer. Safe to call twice.
func (s *Server) Stop() {
	if !s.svc.Stopped() {
		_ = s.svc.Stop()
	}
	s.calls.Wait()
}

// add registers an endpoint whose calls run concurrently: a micro
// handler is called on the subscription's one goroutine, so each call is
// handed to its own, bounded by the server's slots. (micro's per-endpoint
// request and error counts are exact; its processing time covers only
// the hand-off: the time of a call is in the service's HTTP metrics.)
func (s *Server) add(endpoint string, fn func(micro.Request)) error {
	h := micro.HandlerFunc(func(req micro.Request) {
		s.slots <- struct{}{}
		s.calls.Add(1)
		go func() {
			defer s.calls.Done()
			defer func() { <-s.slots }()
			fn(req)
		}()
	})
	if err := s.svc.AddEndpoint(endpoint, h, micro.WithEndpointSubject(Subject(s.name, endpoint))); err != nil {
		return fmt.Errorf("endpoint %s of hmp-%s: %w", endpoint, s.name, err)
	}
	// The subscription reaches the server asynchronously: flush, so that
	// once an endpoint is added, callers find it ("no responders"
	// otherwise, for a call sent right after a role starts).
	if err := s.nc.Flush(); err != nil {
		return fmt.Errorf("endpoint %s of hmp-%s: flush its subscription: %w", endpoint, s.name, err)
	}
	return nil
}

// Vouch puts what a verified envelope vouches for into the context of
// the request rebuilt from it (httpapi.Vouched): the caller's session
// (nil: an anonymous route). A nil Vouch leaves the context as is.
type Vouch func(ctx context.Context, sess *auth.Session) context.Context

// HandleHTTP serves forwarded HTTP requests with h, under the caller's
// deadline, and answers the status, headers and body h wrote. An envelope
// whose signature does not verify under key is refused with a micro
// error 403, one past its deadline 504, a malformed one 400: h never sees
// them.
func (s *Server) HandleHTTP(h http.Handler, key *Key, vouch Vouch) error {
	return s.add(HTTPEndpoint, func(req micro.Request) {
		e, err := key.Open(req.Data(), time.Now())
		if err != nil {
			code := "400"
			switch {
			case errors.Is(err, ErrBadSignature):
				code = "403"
			case errors.Is(err, ErrExpired):
				code = "504"
			}
			s.logger.Warn("rpc_envelope_refused", "service", s.name, "code", code, "error", err.Error())
			_ = req.Error(code, err.Error(), nil)
			return
		}
		ctx, cancel := context.WithDeadline(context.Background(), e.Deadline)
		defer cancel()
		if vouch != nil {
			ctx = vouch(ctx, e.Session)
		}
		r := e.request(ctx)
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		if err := req.Respond(encodeAnswer(status, rec.header, rec.body.Bytes())); err != nil {
			s.logger.Warn("rpc_respond_failed", "service", s.name, "error", err.Error(), "request_id", e.RequestID)
		}
	})
}

// request rebuilds the HTTP request e carries, with context ctx.
func (e *Envelope) request(ctx context.Context) *http.Request {
	target := e.Path
	if e.Query != "" {
		target += "?" + e.Query
	}
	h := e.Header
	if h == nil {
		h = http.Header{}
	}
	if e.RequestID != "" {
		h["X-Request-Id"] = []string{e.RequestID}
	}
	r := &http.Request{
		Method: e.Method, URL: &url.URL{Path: e.Path, RawQuery: e.Query}, RequestURI: target,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "hmp", Header: h,
		Body: http.NoBody, RemoteAddr: e.RemoteAddr, ContentLength: int64(len(e.Body)),
	}
	if len(e.Body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(e.Body))
	}
	return r.WithContext(ctx)
}

// callerContext is a context bound by the caller's deadline (none when
// the caller sent none).
func callerContext(h micro.Headers) (context.Context, context.CancelFunc, error) {
	d := h.Get(HeaderDeadline)
	if d == "" {
		ctx, cancel := context.WithCancel(context.Background())
		return ctx, cancel, nil
	}
	ns, err := strconv.ParseInt(d, 10, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("bad %s header: %w", HeaderDeadline, err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, ns))
	return ctx, cancel, nil
}

// NewCall is the envelope of r (whose body was read into body), vouched
// for with the caller's session (nil: anonymous), to be answered before
// deadline, signed with key: the data of a request to
// Subject(service, HTTPEndpoint). The bearer token does not travel with
// a session: the session stands for it.
func NewCall(key *Key, r *http.Request, sess *auth.Session, body []byte, deadline time.Time) []byte {
	h := r.Header
	if sess != nil && len(h["Authorization"]) > 0 {
		h = h.Clone()
		delete(h, "Authorization")
	}
	return key.Seal(&Envelope{Deadline: deadline, Session: sess, RequestID: r.Header.Get("X-Request-Id"),
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, RemoteAddr: r.RemoteAddr, Header: h, Body: body})
}

// WriteHTTP writes the answer a service sent for a forwarded request.
func WriteHTTP(w http.ResponseWriter, reply *nats.Msg) error {
	if e := ServiceError(reply); e != "" {
		return fmt.Errorf("service error %s", e)
	}
	status, h, body, err := decodeAnswer(reply.Data)
	if err != nil {
		return err
	}
	if status < 100 || status > 999 {
		return fmt.Errorf("answer with status %d", status)
	}
	dst := w.Header()
	for k, vs := range h {
		dst[k] = vs
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// ServiceError returns the micro error a reply carries, or "" when it
// carries none.
func ServiceError(reply *nats.Msg) string {
	code := reply.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return ""
	}
	return code + " " + reply.Header.Get(micro.ErrorHeader)
}

// recorder collects what a handler writes.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
