package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/startstop"
)

// How a Handler says what became of a message it could not apply. An
// error wrapping neither is retried with backoff up to MaxDeliver
// deliveries, then dead-lettered.
var (
	// ErrPoison marks a message wrong in itself (undecodable, impossible):
	// no retry can help, it is dead-lettered at once.
	ErrPoison = errors.New("poison message")
	// ErrTransient marks a failure of a dependency (the database away,
	// overloaded, timing out): nothing is wrong with the message, it is
	// retried with a capped backoff without limit and never dead-lettered.
	ErrTransient = errors.New("transient failure")
)

// Message is one delivered message as a Handler sees it.
type Message struct {
	Subject string
	Data    []byte
	// StreamSeq is the message's sequence in the stream; Deliveries how
	// many times it has been delivered, this time included.
	StreamSeq, Deliveries uint64

	msg jetstream.Msg
}

// Handler applies a batch of messages. It returns nil when every message
// took effect, else one error per message (nil for those that took
// effect), marked with ErrPoison or ErrTransient where it knows. It is
// called from several workers at once. A message is acknowledged only
// after its Handler returned.
type Handler func(ctx context.Context, batch []*Message) []error

// ConsumerConfig tunes a durable consumer of the events stream. The zero
// value of each field means its default.
type ConsumerConfig struct {
	// Durable names the consumer. Required.
	Durable string
	// Description is shown in the server's consumer info.
	Description string
	// MaxAckPending is the most messages delivered and not yet
	// acknowledged. Default 500.
	MaxAckPending int
	// AckWait is how long a delivered message may stay unacknowledged
	// before it is redelivered. Default 30 s.
	AckWait time.Duration
	// BatchSize is the most messages handed to one Handler call. Default 1.
	BatchSize int
	// Workers is the number of Handler calls running at once. Default 1.
	Workers int
	// Linger is how long a worker holding fewer than BatchSize messages
	// waits for more. Default 0: hand over what is there at once.
	Linger time.Duration
	// MaxDeliver is how many deliveries a message failing with an
	// unmarked error gets before it is dead-lettered. Default 5.
	MaxDeliver int
	// RetryDelay is the redelivery delay after a first failure; it doubles
	// (±20 % jitter) with every delivery up to MaxRetryDelay. Defaults
	// 200 ms and 5 s: while a message waits, the consumer's ack floor
	// stands still, and consistent reads wait on it.
	RetryDelay, MaxRetryDelay time.Duration
	// Settled, if set, is told how many messages of a batch ended how:
	// "acked", "retried" or "dead_lettered".
	Settled func(result string, n int)
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c ConsumerConfig) WithDefaults() ConsumerConfig {
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 500
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1
	}
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 5
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = 200 * time.Millisecond
	}
	if c.MaxRetryDelay == 0 {
		c.MaxRetryDelay = 5 * time.Second
	}
	return c
}

// Consumer is a durable pull consumer of the events stream: it fetches,
// hands batches to its Handler on a few workers, acknowledges, asks for
// redelivery with backoff, dead-letters, and subscribes again when its
// consumer is lost. Delivery is at least once; the Handler makes the
// effect exactly once.
type Consumer struct {
	bus    *Bus
	cfg    ConsumerConfig
	handle Handler
	logger *slog.Logger
	m      *consumerMetrics

	base startstop.Base
}

// consumerMetrics are shared by every consumer of a registry, labelled by
// consumer.
type consumerMetrics struct {
	messages    *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	redelivered *prometheus.CounterVec
}

// NewConsumer returns a stopped consumer. b may be nil until Start; reg
// may be nil.
func NewConsumer(b *Bus, cfg ConsumerConfig, h Handler, logger *slog.Logger, reg prometheus.Registerer) *Consumer {
	m := &consumerMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_consumer_messages_total",
			Help: "Messages settled by durable consumers, by consumer and result (acked, retried, dead_lettered)."},
			[]string{"consumer", "result"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_dead_letters_total",
			Help: "Messages moved to the dead-letter stream, by consumer and reason (poison, max_deliveries)."},
			[]string{"consumer", "reason"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hmp_consumer_redeliveries_total",
			Help: "Messages delivered again (after a retry or an expired acknowledgement wait), by consumer."},
			[]string{"consumer"}),
	}
	if reg != nil {
		m.messages = register(reg, m.messages)
		m.deadLetters = register(reg, m.deadLetters)
		m.redelivered = register(reg, m.redelivered)
	}
	// Exported at zero from the start: the bus error-rate alert divides the
	// retried and dead-lettered by every settled message, and a series
	// first seen at its first increment would lose that increment to rate.
	m.redelivered.WithLabelValues(cfg.Durable)
	for _, result := range []string{"acked", "retried", "dead_lettered"} {
		m.messages.WithLabelValues(cfg.Durable, result)
	}
	return &Consumer{bus: b, cfg: cfg.WithDefaults(), handle: h, logger: logger, m: m}
}

// register registers c, or returns the collector already registered under
// its name (several consumers share a registry).
func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// Config returns the consumer's settings.
func (c *Consumer) Config() ConsumerConfig { return c.cfg }

// Ensure creates or updates the durable consumer on the server.
func (c *Consumer) Ensure(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := c.bus.js.CreateOrUpdateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
		Durable: c.cfg.Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: c.cfg.AckWait,
		// Unlimited at the server: the consumer dead-letters by itself, so a
		// message is never stranded unacknowledged (which would stall the
		// ack floor that consistent reads wait on).
		MaxDeliver: -1, MaxAckPending: c.cfg.MaxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
		Description: c.cfg.Description,
		// The consumer's state (its ack floor) is replicated like its
		// stream's, so that it survives the loss of a node.
		Replicas: c.bus.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", c.cfg.Durable, err)
	}
	return cons, nil
}

// Start consumes in the background until Stop. Safe to call twice.
func (c *Consumer) Start(ctx context.Context) error {
	return c.base.StartWith(ctx, func(ctx context.Context) (func(context.Context), error) {
		it, err := c.subscribe(ctx)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) {
			msgs := make(chan jetstream.Msg, c.cfg.MaxAckPending)
			var wg sync.WaitGroup
			wg.Go(func() {
				defer close(msgs)
				c.fetch(ctx, it, msgs)
			})
			for range c.cfg.Workers {
				wg.Go(func() { c.work(ctx, msgs) })
			}
			wg.Wait()
		}, nil
	})
}

// Stop stops fetching, lets the batches in progress finish, and waits.
// Safe to call twice.
func (c *Consumer) Stop() {
	c.base.Stop()
}

// subscribe ensures the consumer and starts pulling from it.
func (c *Consumer) subscribe(ctx context.Context) (jetstream.MessagesContext, error) {
	cons, err := c.Ensure(ctx)
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(c.cfg.MaxAckPending))
	if err != nil {
		return nil, fmt.Errorf("consumer %s pull: %w", c.cfg.Durable, err)
	}
	return it, nil
}

// fetch feeds msgs until ctx ends. On stop it drains the pull: the
// messages already delivered to this process are handed on too, instead of
// waiting out AckWait for a redelivery. If the pull ends by itself (the
// consumer was deleted or lost) it creates the consumer again, with a
// capped backoff and without limit, and goes on, replaying from the start;
// the Handler's exactly-once record absorbs the replay.
func (c *Consumer) fetch(ctx context.Context, it jetstream.MessagesContext, msgs chan<- jetstream.Msg) {
	for {
		stop := context.AfterFunc(ctx, it.Drain)
		for {
			m, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() == nil {
					c.logger.Error("consumer_fetch_failed", "consumer", c.cfg.Durable, "error", err.Error())
				}
				break
			}
			msgs <- m
		}
		stop()
		it.Stop()
		var err error
		it, err = backoff.Retry(ctx, func() (jetstream.MessagesContext, error) { return c.subscribe(ctx) },
			backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond,
				RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 5 * time.Second}),
			backoff.WithMaxElapsedTime(0),
			backoff.WithNotify(func(err error, _ time.Duration) {
				c.logger.Error("consumer_subscribe_failed", "consumer", c.cfg.Durable, "error", err.Error())
			}))
		if err != nil {
			return // stopped
		}
		c.logger.Warn("consumer_resubscribed", "consumer", c.cfg.Durable)
	}
}

// work hands batches to the Handler: it blocks for one message, then takes
// whatever else is already waiting, up to BatchSize, so batches grow with
// load and a lone message is handled at once.
func (c *Consumer) work(ctx context.Context, msgs <-chan jetstream.Msg) {
	batch := make([]jetstream.Msg, 0, c.cfg.BatchSize)
	for {
		m, ok := <-msgs
		if !ok {
			return
		}
		batch = append(batch[:0], m)
		// Take what is waiting; then, when lingering, wait a little for
		// more: under a steady trickle, a few milliseconds turn many
		// one-message calls into one.
		var (
			deadline <-chan time.Time
			timer    *time.Timer
		)
		if c.cfg.Linger > 0 && c.cfg.BatchSize > 1 {
			timer = time.NewTimer(c.cfg.Linger)
			deadline = timer.C
		}
	fill:
		for len(batch) < c.cfg.BatchSize {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
				continue
			default:
			}
			if deadline == nil {
				break
			}
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			case <-deadline:
				break fill
			}
		}
		if timer != nil {
			timer.Stop()
		}
		c.run(context.WithoutCancel(ctx), batch)
	}
}

// run hands one batch to the Handler and settles every message.
func (c *Consumer) run(ctx context.Context, batch []jetstream.Msg) {
	in := make([]*Message, len(batch))
	redelivered := 0
	for i, m := range batch {
		in[i] = &Message{Subject: m.Subject(), Data: m.Data(), Deliveries: 1, msg: m}
		if md, err := m.Metadata(); err == nil {
			in[i].StreamSeq, in[i].Deliveries = md.Sequence.Stream, md.NumDelivered
		}
		if in[i].Deliveries > 1 {
			redelivered++
		}
	}
	if redelivered > 0 {
		c.m.redelivered.WithLabelValues(c.cfg.Durable).Add(float64(redelivered))
	}
	errs := c.handle(ctx, in)
	var acked, retried, dead int
	for i, m := range in {
		var err error
		if errs != nil {
			err = errs[i]
		}
		switch {
		case err == nil:
			_ = m.msg.Ack() // a lost ack means a redelivery, which the Handler absorbs
			acked++
		case errors.Is(err, ErrPoison):
			if c.deadLetter(ctx, m, "poison", err.Error()) {
				dead++
			} else {
				retried++
			}
		case errors.Is(err, ErrTransient):
			_ = m.msg.NakWithDelay(c.retryDelay(m.Deliveries))
			retried++
		case m.Deliveries >= uint64(c.cfg.MaxDeliver):
			if c.deadLetter(ctx, m, "max_deliveries", fmt.Sprintf("failed %d deliveries: %v", m.Deliveries, err)) {
				dead++
			} else {
				retried++
			}
		default:
			_ = m.msg.NakWithDelay(c.retryDelay(m.Deliveries))
			retried++
		}
	}
	c.settled("acked", acked)
	c.settled("retried", retried)
	c.settled("dead_lettered", dead)
}

func (c *Consumer) settled(result string, n int) {
	if n == 0 {
		return
	}
	c.m.messages.WithLabelValues(c.cfg.Durable, result).Add(float64(n))
	if c.cfg.Settled != nil {
		c.cfg.Settled(result, n)
	}
}

// retryDelay is the redelivery delay after the given number of deliveries:
// RetryDelay doubling per delivery, capped at MaxRetryDelay, jittered.
func (c *Consumer) retryDelay(deliveries uint64) time.Duration {
	b := &backoff.ExponentialBackOff{InitialInterval: c.cfg.RetryDelay, RandomizationFactor: 0.2,
		Multiplier: 2, MaxInterval: c.cfg.MaxRetryDelay}
	b.Reset()
	d := b.NextBackOff()
	for i := uint64(1); i < min(deliveries, 32); i++ {
		d = b.NextBackOff()
	}
	return d
}

// deadLetter moves m to the dead-letter stream, counts and logs it once,
// and reports whether it did; if the dead-letter stream cannot be written
// the message is redelivered later instead (never lost).
func (c *Consumer) deadLetter(ctx context.Context, m *Message, class, reason string) bool {
	if err := c.bus.DeadLetter(ctx, m.msg, c.cfg.Durable, reason); err != nil {
		c.logger.Error("dead_letter_failed", "consumer", c.cfg.Durable, "event_id", msgID(m), "stream_seq", m.StreamSeq, "error", err.Error(), "reason", reason)
		_ = m.msg.NakWithDelay(c.cfg.MaxRetryDelay)
		return false
	}
	c.m.deadLetters.WithLabelValues(c.cfg.Durable, class).Inc()
	c.logger.Warn("dead_lettered", "consumer", c.cfg.Durable, "event_id", msgID(m), "org_id", subjectOrg(m.Subject),
		"subject", m.Subject, "stream_seq", m.StreamSeq,
		"deliveries", m.Deliveries, "class", class, "reason", reason)
	return true
}

// msgID is the message's id: the event id, as the relay publishes it.
func msgID(m *Message) string {
	if m.msg == nil || m.msg.Headers() == nil {
		return ""
	}
	return m.msg.Headers().Get(jetstream.MsgIDHeader)
}

// subjectOrg is the organization id of an event subject
// (hmp.events.<org>.<property>), or "".
func subjectOrg(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) == 4 && parts[0] == "hmp" && parts[1] == "events" {
		return parts[2]
	}
	return ""
}
