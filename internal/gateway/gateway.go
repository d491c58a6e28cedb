// Package gateway is the public entry of a split deployment (hmp serve
// --role gateway): past the HTTP edge's authentication, rate limits and
// load shedding (internal/httpapi with Deps.Forward), it forwards each
// request over NATS to the service that owns its path, with a deadline
// per call, retries of the calls that are safe to repeat, and one circuit
// breaker per service. When a service has no instance answering, the
// client gets a 503 with Retry-After, never a 500.
//
// There is one pipeline: the gateway authenticates, limits and admits;
// each call is a signed envelope (rpc.Key) carrying the checked session,
// the request id and the deadline, which the service trusts instead of
// authenticating and shedding again.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"hmp/internal/auth"
	"hmp/internal/bus"
	"hmp/internal/rpc"
)

// Config tunes the forwarding. The zero value of each field means its
// default.
type Config struct {
	// CallTimeout bounds one try of a call to a service; the request's own
	// deadline, when sooner, wins. Default 6 s: past the 5 s a consistent
	// read may wait for its write (the service answers that 503 itself),
	// short of the 10 s request deadline.
	CallTimeout time.Duration
	// Retries is how many more tries a call gets after a failure that is
	// safe to retry: any call that no instance received (no responders),
	// and a GET, HEAD, or a write that its route declares idempotent
	// (httpapi.Retryable) sent with an Idempotency-Key, that got no answer.
	// Default 2; negative: none.
	Retries int
	// RetryDelay is the first pause between tries, doubling (with jitter)
	// up to 1 s. Default 50 ms.
	RetryDelay time.Duration
	// BreakerFailures is how many failed calls in a row open a service's
	// breaker. Default 5.
	BreakerFailures uint32
	// BreakerOpen is how long an open breaker answers 503 at once before
	// it lets one call probe the service. Default 2 s.
	BreakerOpen time.Duration
	// MaxInFlight bounds the API requests the gateway admits at once
	// (its shedding; the services do not shed what it admitted). Zero:
	// what the services can take, the sum of their own bounds (config
	// sets it: MaxInFlight of finance plus that of reports); negative:
	// unbounded.
	MaxInFlight int
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.CallTimeout == 0 {
		c.CallTimeout = 6 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = 50 * time.Millisecond
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerOpen == 0 {
		c.BreakerOpen = 2 * time.Second
	}
	return c
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.CallTimeout < 0 {
		errs = append(errs, fmt.Errorf("gateway call timeout must not be negative, got %s", c.CallTimeout))
	}
	if c.BreakerOpen < 0 {
		errs = append(errs, fmt.Errorf("gateway breaker open time must not be negative, got %s", c.BreakerOpen))
	}
	return errors.Join(errs...)
}

// Route names the service that owns a path: the report reads,
// reconciliation and corrections belong to reports; every write
// (tenancy, revenues, expenses, approvals, cash counts) and the event
// history to finance. A cash count is a write with its event in the
// outbox, so it goes where the relay runs.
func Route(path string) string {
	if strings.HasPrefix(path, "/v1/reports/") && path != "/v1/reports/cash-counts" {
		return rpc.Reports
	}
	return rpc.Finance
}

// Gateway forwards requests to the services over NATS.
type Gateway struct {
	nc       *nats.Conn
	key      *rpc.Key
	cfg      Config
	services map[string]*service
	calls    *prometheus.CounterVec
	logger   *slog.Logger
}

// service is what the gateway keeps per service: its subject, breaker
// and call counters (looked up once, not per call).
type service struct {
	subject                                                         string
	breaker                                                         *gobreaker.CircuitBreaker[*nats.Msg]
	answered, retried, noResponders, timeout, breakerOpen, failures prometheus.Counter
}

// New returns a Gateway on nc, signing its calls with key. Its breakers'
// states are hmp_breaker_state{name="gateway_<service>"} on reg (may be
// nil).
func New(nc *nats.Conn, key *rpc.Key, cfg Config, logger *slog.Logger, reg prometheus.Registerer) *Gateway {
	cfg = cfg.WithDefaults()
	g := &Gateway{nc: nc, key: key, cfg: cfg, logger: logger, services: map[string]*service{},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_gateway_calls_total",
			Help: "Calls the gateway forwarded, by service and result (answered, retried, no_responders, timeout, breaker_open, failed)."},
			[]string{"service", "result"})}
	if reg != nil {
		reg.MustRegister(g.calls)
	}
	states := bus.BreakerStateGauge(reg)
	for _, svc := range []string{rpc.Finance, rpc.Reports} {
		name := "gateway_" + svc
		state := states.WithLabelValues(name)
		state.Set(float64(gobreaker.StateClosed))
		c := func(result string) prometheus.Counter { return g.calls.WithLabelValues(svc, result) }
		g.services[svc] = &service{subject: rpc.Subject(svc, rpc.HTTPEndpoint),
			answered: c("answered"), retried: c("retried"), noResponders: c("no_responders"), timeout: c("timeout"),
			breakerOpen: c("breaker_open"), failures: c("failed")}
		g.services[svc].breaker = gobreaker.NewCircuitBreaker[*nats.Msg](gobreaker.Settings{
			Name: name, MaxRequests: 1, Timeout: cfg.BreakerOpen,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.BreakerFailures },
			// A caller that gave up says nothing about the service.
			IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, context.Canceled) },
			OnStateChange: func(_ string, from, to gobreaker.State) {
				state.Set(float64(to))
				logger.Warn("gateway_breaker", "service", svc, "from", from.String(), "to", to.String())
			},
		})
	}
	return g
}

// Failures of one try, as the retry policy sees them.
var (
	errNoResponders = errors.New("no instance of the service is answering")
	errNoAnswer     = errors.New("the service did not answer in time")
)

// Forward sends r to the service owning its path and writes the answer.
// sess is the authenticated caller's session (nil for anonymous routes),
// which the envelope carries for the service to trust. retryable says that the
// route declares the write idempotent (the service honours its
// Idempotency-Key): only such a write, sent with a key, is tried again
// after a try that got no answer; a header on another route changes
// nothing, since that service would write twice.
func (g *Gateway) Forward(ctx context.Context, sess *auth.Session, retryable bool, w http.ResponseWriter, r *http.Request) {
	svc := Route(r.URL.Path)
	s := g.services[svc]
	body, err := io.ReadAll(r.Body)
	if err != nil {
		unavailable(w, "could not read the request body", "1")
		return
	}
	idempotent := r.Method == http.MethodGet || r.Method == http.MethodHead || (retryable && r.Header.Get("Idempotency-Key") != "")
	try := func() (*nats.Msg, error) {
		reply, err := s.breaker.Execute(func() (*nats.Msg, error) { return g.call(ctx, svc, s.subject, r, sess, body) })
		switch {
		case err == nil:
			return reply, nil
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			s.breakerOpen.Inc()
			return nil, backoff.Permanent(err)
		case errors.Is(err, errNoResponders):
			s.noResponders.Inc()
			return nil, err // never delivered: safe to try again whatever the method
		case errors.Is(err, errNoAnswer) && idempotent:
			s.timeout.Inc()
			return nil, err
		}
		s.failures.Inc()
		return nil, backoff.Permanent(err)
	}
	reply, err := backoff.Retry(ctx, try,
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: g.cfg.RetryDelay, RandomizationFactor: 0.3,
			Multiplier: 2, MaxInterval: time.Second}),
		backoff.WithMaxTries(uint(g.cfg.Retries)+1), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(error, time.Duration) { s.retried.Inc() }))
	if err != nil {
		g.fail(w, r, svc, err)
		return
	}
	if err := rpc.WriteHTTP(w, reply); err != nil {
		g.logger.Error("gateway_bad_reply", "service", svc, "error", err.Error(), "request_id", r.Header.Get("X-Request-Id"))
		unavailable(w, "the "+svc+" service gave an unusable answer; retry shortly", "1")
		return
	}
	s.answered.Inc()
}

// call is one try: the request with the caller's deadline, bounded by the
// per-call timeout.
func (g *Gateway) call(ctx context.Context, svc, subject string, r *http.Request, sess *auth.Session, body []byte) (*nats.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.CallTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	reply, err := g.nc.RequestWithContext(ctx, subject, rpc.NewCall(g.key, r, sess, body, deadline))
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: %w", errNoResponders, err)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return nil, err
	default:
		// A timeout, or the connection lost while the call was out: the
		// service may have acted on it.
		return nil, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	if e := rpc.ServiceError(reply); e != "" {
		return nil, fmt.Errorf("service %s failed the call: %s", svc, e)
	}
	return reply, nil
}

// fail answers a call that got no answer: always a 503 with Retry-After,
// the client's to retry (with its Idempotency-Key for a write).
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, svc string, err error) {
	g.logger.Warn("gateway_unavailable", "service", svc, "error", err.Error(), "request_id", r.Header.Get("X-Request-Id"))
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		unavailable(w, "the "+svc+" service is unavailable; retry shortly", fmt.Sprint(max(1, int(g.cfg.BreakerOpen.Seconds()))))
	case errors.Is(err, errNoResponders):
		unavailable(w, "no "+svc+" service instance is available; retry shortly", "1")
	case errors.Is(err, errNoAnswer):
		unavailable(w, "the "+svc+" service did not answer in time; the outcome is unknown, retry with the same Idempotency-Key", "1")
	default:
		unavailable(w, "the "+svc+" service could not take the request; retry shortly", "1")
	}
}

func unavailable(w http.ResponseWriter, detail, retryAfter string) {
	problem(w, http.StatusServiceUnavailable, detail, retryAfter)
}

// problem writes an RFC 9457 answer.
func problem(w http.ResponseWriter, status int, detail, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
}

// Owned answers 404 for the paths another service owns, so that a service
// runs only its own routes, whatever reaches it. The operator API is per
// instance, on the instance's own HTTP port: never served over the queue
// group, where any instance might answer.
func Owned(service string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (Route(r.URL.Path) != service && !operational(r.URL.Path)) || Operator(r.URL.Path) {
			problem(w, http.StatusNotFound, "no such route on the "+service+" service: "+r.Method+" "+r.URL.Path, "")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// OpsOnly serves what is per instance on a service's HTTP port: the
// operational routes (/healthz, /readyz, /metrics) and the operator API
// (/v1/admin/..., /dashboard: this instance's alerts, index advice,
// settings); 404 for the public API, which clients reach through the
// gateway.
func OpsOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !operational(r.URL.Path) && !Operator(r.URL.Path) {
			problem(w, http.StatusNotFound, "this instance serves the API through the gateway only: "+r.Method+" "+r.URL.Path, "")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Operator reports whether path is the operator API's: served by each
// instance about itself (or, for the settings, about the cluster), never
// forwarded, and not part of the public contract.
func Operator(path string) bool {
	return strings.HasPrefix(path, "/v1/admin/") || path == "/dashboard" || strings.HasPrefix(path, "/dashboard/")
}

func operational(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}
