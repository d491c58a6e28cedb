// Package rpc carries calls between HMP's services over NATS
// request/reply, with the micro package of nats.go: each role registers a
// micro service whose endpoints listen in a queue group, so that NATS
// discovers the instances, spreads the calls over them, and keeps the
// per-endpoint stats (`nats micro stats hmp-finance`). It holds the two
// kinds of call the roles make: an HTTP request forwarded whole (the
// gateway's), and the small tenancy questions of the reports role.
//
// The caller's deadline and request id travel in headers
// (Hmp-Deadline, X-Request-Id); the callee runs under that deadline.
package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Headers of a forwarded HTTP request and its answer. The request's own
// HTTP headers travel beside them under their own names.
const (
	HeaderMethod   = "Hmp-Method"
	HeaderPath     = "Hmp-Path"
	HeaderQuery    = "Hmp-Query"
	HeaderRemote   = "Hmp-Remote-Addr"
	HeaderStatus   = "Hmp-Status"
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

// HandleHTTP serves forwarded HTTP requests with h, under the caller's
// deadline, and answers the status, headers and body h wrote.
func (s *Server) HandleHTTP(h http.Handler) error {
	return s.add(HTTPEndpoint, func(req micro.Request) {
		r, cancel, err := decodeRequest(req)
		if err != nil {
			_ = req.Error("400", err.Error(), nil)
			return
		}
		defer cancel()
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		out := micro.Headers{}
		for k, vs := range rec.header {
			if !hopHeaders[k] {
				out[k] = vs
			}
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		out[HeaderStatus] = []string{strconv.Itoa(status)}
		if err := req.Respond(rec.body.Bytes(), micro.WithHeaders(out)); err != nil {
			s.logger.Warn("rpc_respond_failed", "service", s.name, "error", err.Error(), "request_id", r.Header.Get("X-Request-Id"))
		}
	})
}

// decodeRequest rebuilds the HTTP request a message carries, with a
// context bound by the caller's deadline.
func decodeRequest(req micro.Request) (*http.Request, context.CancelFunc, error) {
	hdr := req.Headers()
	method, path := hdr.Get(HeaderMethod), hdr.Get(HeaderPath)
	if method == "" || !strings.HasPrefix(path, "/") {
		return nil, nil, errors.New("not a forwarded HTTP request: method or path missing")
	}
	ctx, cancel, err := callerContext(hdr)
	if err != nil {
		return nil, nil, err
	}
	target := path
	if q := hdr.Get(HeaderQuery); q != "" {
		target += "?" + q
	}
	r, err := http.NewRequestWithContext(ctx, method, "http://hmp"+target, bytes.NewReader(req.Data()))
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("forwarded request: %w", err)
	}
	r.RequestURI = target
	r.RemoteAddr = hdr.Get(HeaderRemote)
	for k, vs := range hdr {
		if strings.HasPrefix(k, "Hmp-") || strings.HasPrefix(k, "Nats-") {
			continue
		}
		r.Header[http.CanonicalHeaderKey(k)] = vs
	}
	r.ContentLength = int64(len(req.Data()))
	return r, cancel, nil
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

// NewHTTPMsg is the message that forwards r (whose body was read into
// body) to service, to be answered before deadline.
func NewHTTPMsg(service string, r *http.Request, body []byte, deadline time.Time) *nats.Msg {
	m := nats.NewMsg(Subject(service, HTTPEndpoint))
	for k, vs := range r.Header {
		if !hopHeaders[k] && !strings.HasPrefix(k, "Hmp-") {
			m.Header[k] = vs
		}
	}
	m.Header.Set(HeaderMethod, r.Method)
	m.Header.Set(HeaderPath, r.URL.Path)
	if r.URL.RawQuery != "" {
		m.Header.Set(HeaderQuery, r.URL.RawQuery)
	}
	if r.RemoteAddr != "" {
		m.Header.Set(HeaderRemote, r.RemoteAddr)
	}
	if !deadline.IsZero() {
		m.Header.Set(HeaderDeadline, strconv.FormatInt(deadline.UnixNano(), 10))
	}
	m.Data = body
	return m
}

// WriteHTTP writes the answer a service sent for a forwarded request.
func WriteHTTP(w http.ResponseWriter, reply *nats.Msg) error {
	status, err := strconv.Atoi(reply.Header.Get(HeaderStatus))
	if err != nil || status < 100 || status > 999 {
		return fmt.Errorf("reply without a status (%q): %s", reply.Header.Get(HeaderStatus), ServiceError(reply))
	}
	for k, vs := range reply.Header {
		if k == HeaderStatus || strings.HasPrefix(k, "Nats-") || hopHeaders[k] {
			continue
		}
		w.Header()[http.CanonicalHeaderKey(k)] = vs
	}
	w.WriteHeader(status)
	_, _ = w.Write(reply.Data)
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
