// Package bus is HMP's message bus: NATS JetStream, run in-process by
// default (nats-server as a library, file storage under the data dir) or
// reached at a URL (a replicated cluster in production). It owns the
// stream layout: the events stream every state change is published to,
// and the dead-letter stream for messages that keep failing.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"hmp/internal/domain"
)

// Stream and subject names.
const (
	EventsStream     = "HMP_EVENTS"
	eventsSubjects   = "hmp.events.>"
	DeadLetterStream = "HMP_DLQ"
	deadSubjects     = "hmp.dlq.>"
)

// Config says where the bus is. The zero value of each field means its
// default.
type Config struct {
	// URL of an external NATS server or cluster. Empty: run an embedded
	// server in this process.
	URL string
	// StoreDir is the embedded server's JetStream storage. Required when
	// URL is empty.
	StoreDir string
	// Replicas of each stream (1 embedded; 3 on a cluster). Default 1.
	Replicas int
	// DuplicateWindow is how long the events stream remembers message ids
	// to drop re-publishes. Default 2 min.
	DuplicateWindow time.Duration
	// Retention is how long the events stream keeps messages (and so how
	// far back a replay can start). Default 7 days.
	Retention time.Duration
	// Tool opens the bus for an operator tool beside a running
	// deployment: the streams must exist, and their configuration is
	// never changed (only hmp serve sets it). Default false.
	Tool bool
	// StartTimeout bounds how long Open keeps trying to create or find
	// the streams (a fresh cluster electing its leaders, another instance
	// creating them at the same moment), with backoff. Default 30 s.
	StartTimeout time.Duration
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	return c
}

// Bus is a connection to JetStream with the HMP streams in place.
type Bus struct {
	closed chan struct{} // closed when the connection is closed
	cfg    Config
	ns     *server.Server // nil when external
	lock   *os.File       // holds the embedded store's lock; nil when external
	nc     *nats.Conn
	js     jetstream.JetStream
	logger *slog.Logger
}

// Open starts the embedded server (unless cfg.URL is set), connects, and
// creates or updates the streams, idempotently.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Bus, error) {
	cfg = cfg.WithDefaults()
	b := &Bus{cfg: cfg, logger: logger, closed: make(chan struct{})}
	var opts []nats.Option
	url := cfg.URL
	if url == "" {
		if cfg.StoreDir == "" {
			return nil, errors.New("bus: StoreDir is required for the embedded server")
		}
		lock, err := lockStore(cfg.StoreDir)
		if err != nil {
			return nil, err
		}
		b.lock = lock
		ns, err := server.NewServer(&server.Options{
			ServerName: "hmp-embedded", JetStream: true, StoreDir: cfg.StoreDir,
			DontListen: true, NoSigs: true, NoLog: true,
		})
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(30 * time.Second) {
			ns.Shutdown()
			b.Close()
			return nil, errors.New("embedded nats did not become ready in 30s")
		}
		b.ns = ns
		opts = append(opts, nats.InProcessServer(ns))
	}
	opts = append(opts, nats.Name("hmp"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats_disconnected", "error", err.Error())
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { logger.Info("nats_reconnected") }),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	b.nc = nc
	if b.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := b.ensureStreams(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// ensureStreams creates the streams or brings their configuration up to
// date, each retried with backoff until StartTimeout: a fresh cluster
// answers "no leader" for a while, and instances starting together race
// to create the same stream.
func (b *Bus) ensureStreams(ctx context.Context) error {
	for _, cfg := range []jetstream.StreamConfig{{
		Name: EventsStream, Subjects: []string{eventsSubjects}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, MaxAge: b.cfg.Retention, Duplicates: b.cfg.DuplicateWindow,
		Replicas: b.cfg.Replicas, Discard: jetstream.DiscardOld,
		Description: "every HMP state change, published from the outbox; message id = event id",
	}, {
		Name: DeadLetterStream, Subjects: []string{deadSubjects}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, MaxAge: 30 * 24 * time.Hour, Replicas: b.cfg.Replicas,
		Description: "messages a consumer gave up on, with the reason in headers",
	}} {
		if _, err := startRetry(ctx, b.cfg.StartTimeout, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, b.ensureStream(ctx, cfg)
		}); err != nil {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// ensureStream creates the stream of cfg, or updates it to cfg, never
// lowering its replica count (a smaller count is a configuration mistake
// that would drop the consumers of a replicated deployment). A tool only
// checks that it exists.
func (b *Bus) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	if b.cfg.Tool {
		_, err := b.js.Stream(ctx, cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return backoff.Permanent(fmt.Errorf("%w: a tool does not create it; is hmp serve running on this bus?", err))
		}
		return err
	}
	_, err := b.js.CreateStream(ctx, cfg)
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return err
	}
	s, err := b.js.Stream(ctx, cfg.Name)
	if err != nil {
		return err
	}
	if have := s.CachedInfo().Config.Replicas; have > cfg.Replicas {
		b.logger.Warn("bus_stream_replicas_kept", "stream", cfg.Name, "replicas", have, "configured", cfg.Replicas)
		cfg.Replicas = have
	}
	_, err = b.js.UpdateStream(ctx, cfg)
	return err
}

// startRetry runs op until it succeeds, fails permanently, or within
// passes, with exponential backoff and jitter; each attempt gets at most
// 5 s.
func startRetry[T any](ctx context.Context, within time.Duration, op func(context.Context) (T, error)) (T, error) {
	return backoff.Retry(ctx, func() (T, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return op(ctx)
	}, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(within))
}

// Conn returns the NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Retention is how long the events stream keeps messages.
func (b *Bus) Retention() time.Duration { return b.cfg.Retention }

// Ping reports whether JetStream answers.
func (b *Bus) Ping(ctx context.Context) error {
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// Close drains the connection and stops the embedded server. Safe to call
// twice.
func (b *Bus) Close() {
	if b.nc != nil {
		if err := b.nc.Drain(); err == nil {
			select {
			case <-b.closed:
			case <-time.After(10 * time.Second):
			}
		}
		b.nc.Close()
		b.nc = nil
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
		b.ns = nil
	}
	if b.lock != nil {
		_ = b.lock.Close() // releases the lock
		b.lock = nil
	}
}

// lockStore takes an exclusive lock on the embedded store dir: two
// processes running JetStream on one store would corrupt it (an operator
// command such as `hmp dlq` next to a running `hmp serve`).
func lockStore(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded nats store: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "hmp.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded nats store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("the embedded bus at %s is in use by another process (a running hmp serve?): stop it, or reach its bus with a NATS URL", dir)
		}
		return nil, fmt.Errorf("embedded nats store lock: %w", err)
	}
	return f, nil
}

// EventSubject is where an event of an organization and property is
// published: hmp.events.<org>.<property|none>.
func EventSubject(orgID domain.ID, propertyID *domain.ID) string {
	p := "none"
	if propertyID != nil {
		p = propertyID.String()
	}
	return "hmp.events." + orgID.String() + "." + p
}

// PublishEvents publishes events in order, with the event id as the
// message id so that the stream drops a re-publish, and waits until
// JetStream has stored every one. It returns the highest stream sequence
// among them.
func (b *Bus) PublishEvents(ctx context.Context, events []domain.Event) (uint64, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			return 0, fmt.Errorf("encode event %s: %w", ev.ID, err)
		}
		f, err := b.js.PublishMsgAsync(&nats.Msg{Subject: EventSubject(ev.OrgID, ev.PropertyID), Data: data},
			jetstream.WithMsgID(ev.ID.String()))
		if err != nil {
			return 0, fmt.Errorf("publish event %s: %w", ev.ID, err)
		}
		futures = append(futures, f)
	}
	var last uint64
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			last = max(last, ack.Sequence)
		case err := <-f.Err():
			return 0, fmt.Errorf("publish event: %w", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return last, nil
}

// Dead-letter headers.
const (
	HeaderReason     = "Hmp-Dlq-Reason"
	HeaderSubject    = "Hmp-Dlq-Subject"
	HeaderStreamSeq  = "Hmp-Dlq-Stream-Seq"
	HeaderDeliveries = "Hmp-Dlq-Deliveries"
	HeaderConsumer   = "Hmp-Dlq-Consumer"
)

// DeadLetter stores msg in the dead-letter stream with the reason, then
// terminates it on its consumer so it is never delivered again.
func (b *Bus) DeadLetter(ctx context.Context, msg jetstream.Msg, consumer, reason string) error {
	out := nats.NewMsg("hmp.dlq." + consumer)
	out.Data = msg.Data()
	out.Header.Set(HeaderReason, reason)
	out.Header.Set(HeaderSubject, msg.Subject())
	out.Header.Set(HeaderConsumer, consumer)
	if md, err := msg.Metadata(); err == nil {
		out.Header.Set(HeaderStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
		out.Header.Set(HeaderDeliveries, strconv.FormatUint(md.NumDelivered, 10))
	}
	if _, err := b.js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	if err := msg.Term(); err != nil {
		return fmt.Errorf("terminate dead-lettered message: %w", err)
	}
	return nil
}

// AckFloor returns the stream sequence up to which the durable consumer
// has acknowledged every message.
func (b *Bus) AckFloor(ctx context.Context, stream, durable string) (uint64, error) {
	c, err := b.js.Consumer(ctx, stream, durable)
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer %s info: %w", durable, err)
	}
	return info.AckFloor.Stream, nil
}
