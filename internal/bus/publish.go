package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"hmp/internal/domain"
)

// PublisherConfig tunes the guarded publish path. The zero value of each
// field means its default.
type PublisherConfig struct {
	// AckTimeout bounds one PublishEvents call, acknowledgements included:
	// a PubAck lost on a cluster must not block the caller forever.
	// Default 10 s.
	AckTimeout time.Duration
	// BreakerFailures is how many consecutive failed publishes open the
	// breaker. Default 5.
	BreakerFailures uint32
	// BreakerOpen is how long the open breaker refuses publishes before it
	// lets one probe through (half-open). Default 60 s.
	BreakerOpen time.Duration
	// Name labels the breaker's state metric. Default "bus_publish".
	Name string
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c PublisherConfig) WithDefaults() PublisherConfig {
	if c.AckTimeout == 0 {
		c.AckTimeout = 10 * time.Second
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerOpen == 0 {
		c.BreakerOpen = 60 * time.Second
	}
	if c.Name == "" {
		c.Name = "bus_publish"
	}
	return c
}

// Publisher publishes events to the events stream through a circuit
// breaker, each call bounded by the acknowledgement timeout. It is what
// the outbox relay publishes through.
type Publisher struct {
	bus    *Bus
	cfg    PublisherConfig
	cb     *gobreaker.CircuitBreaker[uint64]
	logger *slog.Logger
}

// BreakerStateGauge returns the gauge vector hmp_breaker_state{name}
// registered on reg (0 closed, 1 half-open, 2 open), or the one already
// registered there by another breaker, so every breaker of the process
// shares it. Other breakers (Redis, notifiers) should take their gauge
// from here too. reg may be nil.
func BreakerStateGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hmp_breaker_state",
		Help: "State of a circuit breaker: 0 closed, 1 half-open, 2 open."}, []string{"name"})
	if reg == nil {
		return g
	}
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
				return existing
			}
		}
		// A different metric under this name (another help text): keep
		// the breaker working, unexported, rather than fail the start.
	}
	return g
}

// NewPublisher returns a Publisher on b. reg may be nil.
func NewPublisher(b *Bus, cfg PublisherConfig, logger *slog.Logger, reg prometheus.Registerer) *Publisher {
	cfg = cfg.WithDefaults()
	state := BreakerStateGauge(reg).WithLabelValues(cfg.Name)
	state.Set(float64(gobreaker.StateClosed))
	p := &Publisher{bus: b, cfg: cfg, logger: logger}
	p.cb = gobreaker.NewCircuitBreaker[uint64](gobreaker.Settings{
		Name:        cfg.Name,
		MaxRequests: 1, // one probe at a time while half-open
		Timeout:     cfg.BreakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.BreakerFailures },
		OnStateChange: func(name string, from, to gobreaker.State) {
			state.Set(float64(to))
			logger.Warn("breaker_state_changed", "breaker", name, "from", from.String(), "to", to.String())
		},
		// The caller giving up (shutdown) says nothing about the bus.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
	})
	return p
}

// State is the breaker's state.
func (p *Publisher) State() gobreaker.State { return p.cb.State() }

// PublishEvents publishes events in order (see Bus.PublishEvents) and
// returns the highest stream sequence they got. It fails with
// context.DeadlineExceeded when the acknowledgements do not all arrive
// within AckTimeout, and with gobreaker.ErrOpenState, at once, while the
// breaker is open.
func (p *Publisher) PublishEvents(ctx context.Context, events []domain.Event) (uint64, error) {
	return p.cb.Execute(func() (uint64, error) {
		ctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
		defer cancel()
		return p.bus.PublishEvents(ctx, events)
	})
}

// StreamEpoch returns the creation time of the events stream, which
// changes when the stream was deleted or its data lost and it was made
// anew: stream sequences then start over. A missing stream is created
// again first (only through the breaker's timeout bound, not its count:
// this is how publishing recovers).
func (p *Publisher) StreamEpoch(ctx context.Context) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
	defer cancel()
	s, err := p.bus.js.Stream(ctx, EventsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		p.logger.Warn("bus_stream_missing", "stream", EventsStream)
		if err := p.bus.ensureStreams(ctx); err != nil {
			return time.Time{}, err
		}
		s, err = p.bus.js.Stream(ctx, EventsStream)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("stream %s: %w", EventsStream, err)
	}
	return s.CachedInfo().Created, nil
}
