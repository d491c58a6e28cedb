package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"hmp/internal/bus"
)

// Notification is what a notifier announces: an alert that fired or
// resolved.
type Notification struct {
	Alert Alert
	// Event is firing or resolved.
	Event string
}

// Title is the notification's one-line headline.
func (n Notification) Title() string {
	tag := "FIRING"
	if n.Event == StateResolved {
		tag = "RESOLVED"
	}
	return fmt.Sprintf("[%s] %s (%s)", tag, n.Alert.Rule, n.Alert.Severity)
}

// Text is the notification's plain-text body.
func (n Notification) Text() string {
	a := n.Alert
	op := ">"
	if a.Below {
		op = "<"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s\nvalue %s (threshold %s %s)", n.Title(), a.Summary, formatValue(a.Value), op, formatValue(a.Threshold))
	if len(a.Labels) > 0 {
		fmt.Fprintf(&b, "\nlabels %s", formatLabels(a.Labels))
	}
	fmt.Fprintf(&b, "\nalert %s, active since %s", a.ID, a.ActiveAt.UTC().Format(time.RFC3339))
	if a.ResolvedAt != nil {
		fmt.Fprintf(&b, ", resolved at %s", a.ResolvedAt.UTC().Format(time.RFC3339))
	}
	return b.String()
}

func formatValue(v float64) string { return fmt.Sprintf("%.4g", v) }

func formatLabels(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k+"="+l[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// A Notifier delivers one notification, once; the dispatcher retries,
// limits and deduplicates around it.
type Notifier interface {
	Name() string
	Notify(ctx context.Context, n Notification) error
}

// DispatchConfig tunes the delivery of notifications. The zero value of
// each field means its default.
type DispatchConfig struct {
	// RatePerMinute bounds the notifications one notifier sends; more wait
	// their turn. Default 30; Burst default 10.
	RatePerMinute float64
	Burst         int
	// MaxElapsed bounds the retries of one notification before it is
	// dropped (logged). Default 5 min.
	MaxElapsed time.Duration
	// InitialBackoff is the first retry delay, doubling. Default 500 ms.
	InitialBackoff time.Duration
	// BreakerFailures consecutive failures open a notifier's breaker for
	// BreakerOpen. Defaults 5 and 30 s.
	BreakerFailures uint32
	BreakerOpen     time.Duration
	// Queue bounds the notifications waiting per notifier. Default 256.
	Queue int
}

// WithDefaults returns a copy of c with every zero field at its default.
func (c DispatchConfig) WithDefaults() DispatchConfig {
	if c.RatePerMinute == 0 {
		c.RatePerMinute = 30
	}
	if c.Burst == 0 {
		c.Burst = 10
	}
	if c.MaxElapsed == 0 {
		c.MaxElapsed = 5 * time.Minute
	}
	if c.InitialBackoff == 0 {
		c.InitialBackoff = 500 * time.Millisecond
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerOpen == 0 {
		c.BreakerOpen = 30 * time.Second
	}
	if c.Queue == 0 {
		c.Queue = 256
	}
	return c
}

// errPermanent marks a delivery failure that a retry cannot fix (a 4xx
// answer, a rejected recipient).
var errPermanent = errors.New("permanent")

// Dispatcher sends the evaluator's firing and resolved changes to every
// notifier, each on its own queue: rate-limited, retried with backoff
// behind a circuit breaker, and deduplicated (one notification per alert
// and event, however often the change arrives).
type Dispatcher struct {
	cfg    DispatchConfig
	logger *slog.Logger
	sinks  []*sink
	sent   *prometheus.CounterVec

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type sink struct {
	n       Notifier
	queue   chan Notification
	limiter *rate.Limiter
	cb      *gobreaker.CircuitBreaker[struct{}]

	mu   sync.Mutex
	seen map[string]time.Time // alert id + event -> when queued
}

// NewDispatcher returns a stopped dispatcher to notifiers. reg may be nil.
func NewDispatcher(notifiers []Notifier, cfg DispatchConfig, logger *slog.Logger, reg prometheus.Registerer) *Dispatcher {
	cfg = cfg.WithDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{cfg: cfg, logger: logger,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_alert_notifications_total",
			Help: "Alert notifications by notifier and result (sent, failed, deduplicated, dropped)."}, []string{"notifier", "result"})}
	if reg != nil {
		reg.MustRegister(d.sent)
	}
	states := bus.BreakerStateGauge(reg)
	for _, n := range notifiers {
		state := states.WithLabelValues("notify_" + n.Name())
		state.Set(float64(gobreaker.StateClosed))
		s := &sink{n: n, queue: make(chan Notification, cfg.Queue), seen: map[string]time.Time{},
			limiter: rate.NewLimiter(rate.Limit(cfg.RatePerMinute/60), cfg.Burst)}
		s.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name: "notify_" + n.Name(), MaxRequests: 1, Timeout: cfg.BreakerOpen,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.BreakerFailures },
			OnStateChange: func(name string, from, to gobreaker.State) {
				state.Set(float64(to))
				logger.Warn("breaker_state_changed", "breaker", name, "from", from.String(), "to", to.String())
			},
			IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, errPermanent) },
		})
		d.sinks = append(d.sinks, s)
	}
	return d
}

// Start delivers the changes of changes (a Subscribe channel) until Stop
// or until changes closes. Safe to call twice.
func (d *Dispatcher) Start(ctx context.Context, changes <-chan Change) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel != nil {
		return nil
	}
	ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, s := range d.sinks {
		d.wg.Go(func() { d.deliver(ctx, s) })
	}
	d.wg.Go(func() {
		defer func() {
			for _, s := range d.sinks {
				close(s.queue)
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case c, ok := <-changes:
				if !ok {
					return
				}
				d.Enqueue(c)
			}
		}
	})
	return nil
}

// Stop ends the deliveries (those being retried are dropped). Safe to
// call twice.
func (d *Dispatcher) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.wg.Wait()
}

// Enqueue hands a change to every notifier if it is a firing or a
// resolution not already handed over.
func (d *Dispatcher) Enqueue(c Change) {
	if c.Alert.State != StateFiring && c.Alert.State != StateResolved {
		return
	}
	n := Notification{Alert: c.Alert, Event: c.Alert.State}
	key := c.Alert.ID + "/" + n.Event
	for _, s := range d.sinks {
		if !s.first(key) {
			d.sent.WithLabelValues(s.n.Name(), "deduplicated").Inc()
			continue
		}
		select {
		case s.queue <- n:
		default:
			d.sent.WithLabelValues(s.n.Name(), "dropped").Inc()
			d.logger.Error("alert_notification_dropped", "notifier", s.n.Name(), "alert_id", c.Alert.ID, "reason", "queue full")
		}
	}
}

// first records key and reports whether it is new; records older than a
// day are forgotten (alert ids are never reused within a process).
func (s *sink) first(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if _, ok := s.seen[key]; ok {
		return false
	}
	if len(s.seen) > 10_000 {
		for k, t := range s.seen {
			if now.Sub(t) > 24*time.Hour {
				delete(s.seen, k)
			}
		}
	}
	s.seen[key] = now
	return true
}

func (d *Dispatcher) deliver(ctx context.Context, s *sink) {
	for n := range s.queue {
		if err := s.limiter.Wait(ctx); err != nil {
			return // stopping
		}
		start := time.Now()
		_, err := backoff.Retry(ctx, func() (struct{}, error) {
			_, err := s.cb.Execute(func() (struct{}, error) {
				actx, cancel := context.WithTimeout(ctx, 15*time.Second)
				defer cancel()
				return struct{}{}, s.n.Notify(actx, n)
			})
			if errors.Is(err, errPermanent) {
				return struct{}{}, backoff.Permanent(err)
			}
			return struct{}{}, err
		}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: d.cfg.InitialBackoff, RandomizationFactor: 0.2,
			Multiplier: 2, MaxInterval: 30 * time.Second}), backoff.WithMaxElapsedTime(d.cfg.MaxElapsed),
			backoff.WithNotify(func(err error, next time.Duration) {
				d.logger.Warn("alert_notification_retry", "notifier", s.n.Name(), "alert_id", n.Alert.ID, "error", err.Error(), "retry_in", next.String())
			}))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.sent.WithLabelValues(s.n.Name(), "failed").Inc()
			d.logger.Error("alert_notification_failed", "notifier", s.n.Name(), "alert_id", n.Alert.ID, "event", n.Event, "error", err.Error())
			continue
		}
		d.sent.WithLabelValues(s.n.Name(), "sent").Inc()
		d.logger.Info("alert_notification_sent", "notifier", s.n.Name(), "alert_id", n.Alert.ID, "event", n.Event,
			"duration_ms", time.Since(start).Milliseconds())
	}
}
