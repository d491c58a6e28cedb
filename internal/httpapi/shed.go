package httpapi

import (
	"context"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/domain"
)

// Shedding bounds the work the API takes on. The zero value of each field
// means its default.
type Shedding struct {
	// MaxInFlight bounds the /v1 requests handled at once. Zero or
	// negative: unbounded (no shedding).
	MaxInFlight int
	// MaxWait bounds how long a request waits for a slot before it is
	// refused with 503 and Retry-After. Default 250 ms: under a flood a
	// refused request comes straight back, and answering it again costs
	// more than letting it wait for a slot (scripts/overload.sh, 1,000
	// connections, alternated: 50 ms held 0.72-0.76 of the capacity, 250 ms
	// with 128 connection places 1.09-1.11; docs/measuring.md).
	MaxWait time.Duration
	// OrgShare is the fraction of the slots one organization may hold at
	// once (unauthenticated requests count as one organization), so that
	// one tenant's flood cannot starve the others. Default 0.75; 1: no
	// per-organization bound.
	OrgShare float64
	// RequestTimeout is the deadline of every /v1 request, carried by its
	// context to every database call. Default 10 s; negative: none.
	RequestTimeout time.Duration
}

func (c Shedding) withDefaults() Shedding {
	if c.MaxWait <= 0 {
		c.MaxWait = 250 * time.Millisecond
	}
	if c.OrgShare <= 0 || c.OrgShare > 1 {
		c.OrgShare = 0.75
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	return c
}

// slots is a counting semaphore of n with a bound per organization.
type slots struct {
	all    chan struct{}
	perOrg int

	mu   sync.Mutex
	orgs map[domain.ID]*orgSlots
	// free keeps a few semaphores of organizations that went idle, for
	// the next: one organization's sequential requests would otherwise
	// make a semaphore each.
	free []*orgSlots
}

// freeSlots bounds slots.free.
const freeSlots = 64

type orgSlots struct {
	ch   chan struct{}
	refs int
}

func newSlots(n int, share float64) *slots {
	per := max(1, int(math.Ceil(float64(n)*share)))
	return &slots{all: make(chan struct{}, n), perOrg: min(per, n), orgs: map[domain.ID]*orgSlots{}}
}

// org returns the organization's semaphore, counting one more user of it.
func (s *slots) org(key domain.ID) *orgSlots {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgs[key]
	if o == nil {
		if n := len(s.free); n > 0 {
			o, s.free = s.free[n-1], s.free[:n-1]
		} else {
			o = &orgSlots{ch: make(chan struct{}, s.perOrg)}
		}
		s.orgs[key] = o
	}
	o.refs++
	return o
}

func (s *slots) release(key domain.ID, o *orgSlots) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.refs--; o.refs == 0 {
		delete(s.orgs, key)
		// Unused now, so empty: every holder gave its slot back.
		if len(s.free) < freeSlots {
			s.free = append(s.free, o)
		}
	}
}

// acquire takes one of the organization's slots and one of all, waiting at
// most wait. It returns the organization's semaphore, which leave gives
// back, or the reason it could not ("org_share", "queue_timeout",
// "client_gone").
func (s *slots) acquire(ctx context.Context, key domain.ID, wait time.Duration) (*orgSlots, string) {
	o := s.org(key)
	// Free slots are taken without a timer (the common case).
	select {
	case o.ch <- struct{}{}:
		select {
		case s.all <- struct{}{}:
			return o, ""
		default:
			<-o.ch
		}
	default:
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case o.ch <- struct{}{}:
	case <-timer.C:
		s.release(key, o)
		return nil, "org_share"
	case <-ctx.Done():
		s.release(key, o)
		return nil, "client_gone"
	}
	select {
	case s.all <- struct{}{}:
	case <-timer.C:
		<-o.ch
		s.release(key, o)
		return nil, "queue_timeout"
	case <-ctx.Done():
		<-o.ch
		s.release(key, o)
		return nil, "client_gone"
	}
	return o, ""
}

// leave gives back the slots acquire took (a method, not a closure: a
// cached read is a few microseconds, and each allocation counts).
func (s *slots) leave(key domain.ID, o *orgSlots) {
	<-s.all
	<-o.ch
	s.release(key, o)
}

type shedMetrics struct {
	shed     *prometheus.CounterVec
	inFlight prometheus.Gauge
}

func newShedMetrics(reg prometheus.Registerer) *shedMetrics {
	m := &shedMetrics{
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hmp_http_shed_total", Help: "API requests refused with 503 for want of a slot, by reason (queue_timeout: all slots busy; org_share: the organization holds its share).",
		}, []string{"reason"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hmp_http_in_flight", Help: "API requests holding a slot.",
		}),
	}
	m.shed.WithLabelValues("queue_timeout")
	m.shed.WithLabelValues("org_share")
	if reg != nil {
		reg.MustRegister(m.shed, m.inFlight)
	}
	return m
}

// admit runs before a /v1 request's body is read: it authenticates the
// bearer token (cheap: a cached signature check), gives the request its
// deadline, and takes a slot for it, a slot of its organization's share,
// waiting at most MaxWait; past that it answers 503 with Retry-After
// instead of parking the request until its client gives up. Requests
// without a valid token hold no slot: they are answered 401 (or the
// anonymous login and signup) without touching the slots of tenants.
// Login and signup share one "organization" of anonymous work.
func (s *server) admit(cfg Shedding, m *shedMetrics) func(http.Handler) http.Handler {
	cfg = cfg.withDefaults()
	var sl *slots
	if cfg.MaxInFlight > 0 {
		sl = newSlots(cfg.MaxInFlight, cfg.OrgShare)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/v1/") || admitVouched(r) {
				next.ServeHTTP(w, r)
				return
			}
			ctx := r.Context()
			if cfg.RequestTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, cfg.RequestTimeout)
				defer cancel()
			}
			var key domain.ID // the zero id: anonymous work
			if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && s.Tokens != nil {
				sess, err := s.Tokens.Check(ctx, strings.TrimSpace(token))
				if err != nil {
					// huma's authentication answers it (401, or 503 when
					// the user's state could not be read), with no slot.
					next.ServeHTTP(w, r.WithContext(ctx))
					return
				}
				if st := stateOf(ctx); st != nil {
					st.sess, st.pre = sess, true
				}
				key = sess.Actor.OrgID
			}
			if sl != nil {
				o, reason := sl.acquire(ctx, key, cfg.MaxWait)
				if o == nil {
					if reason == "client_gone" {
						s.Logger.Debug("http_client_gone", "request_id", RequestID(ctx), "error", context.Cause(ctx))
						quietly(r)
						w.Header().Set("Retry-After", "1")
						writeProblem(w, http.StatusServiceUnavailable, "the request ended while waiting for a slot")
						return
					}
					m.shed.WithLabelValues(reason).Inc()
					quietly(r)
					if s.Crowded != nil && s.Crowded() {
						w.Header().Set("Connection", "close") // its place goes to a waiting client
					}
					w.Header().Set("Retry-After", "1")
					writeProblem(w, http.StatusServiceUnavailable, "the server is busy; retry after the time in Retry-After")
					return
				}
				m.inFlight.Inc()
				defer func() { m.inFlight.Dec(); sl.leave(key, o) }()
			}
			if s.Overstayed != nil && s.Overstayed(ctx) {
				w.Header().Set("Connection", "close") // served, then its place goes round
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
