package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/startstop"
)

// Publisher stores events on the bus in the given order and returns the
// highest stream sequence they got; it returns only once all are stored.
type Publisher interface {
	PublishEvents(ctx context.Context, events []domain.Event) (uint64, error)
}

// StreamWatcher is implemented by a Publisher that can tell when its
// stream was made anew (deleted and recreated, or its data lost): the
// stream's creation time then changes and its sequences start over.
type StreamWatcher interface {
	// StreamEpoch returns the stream's creation time, creating the stream
	// first if it is missing.
	StreamEpoch(ctx context.Context) (time.Time, error)
}

// RelayConfig tunes the relay. The zero value of each field means its
// default.
type RelayConfig struct {
	// PollInterval is the pause after a cycle that found less than a full
	// batch. Default 5 ms.
	PollInterval time.Duration
	// IdleInterval is the longest pause between cycles that find nothing:
	// the pause doubles from PollInterval after each empty cycle up to it,
	// and Wake ends it at once. Idle polling at PollInterval was most of
	// an idle HMP's CPU (200 outbox reads a second, in both processes).
	// Default 50 ms; less than PollInterval means PollInterval; negative:
	// none, every pause is PollInterval and Wake is ignored.
	IdleInterval time.Duration
	// BatchSize is the most events published per cycle. Default 1000.
	BatchSize int
	// LeaderRetry is how often a standby relay tries to become the active
	// one, and how long a leader that gave up waits before trying again.
	// Default 2 s.
	LeaderRetry time.Duration
	// PublishTimeout bounds each publish, acknowledgements included.
	// Default 10 s.
	PublishTimeout time.Duration
	// StallTimeout is how long a leader retries failing cycles (bus or
	// database) before it gives up leadership (closing its connection, so
	// the lock is released even when the database connection hangs) and
	// lets another instance take over. It also bounds each cycle. Default
	// 30 s.
	StallTimeout time.Duration
	// StreamCheck is how often the leader checks, through a Publisher that
	// is a StreamWatcher, whether the stream was made anew; it also checks
	// after every failed cycle. Default 2 s.
	StreamCheck time.Duration
	// Rewind returns the oldest transaction id whose events a consumer may
	// still need: after the stream was made anew the relay re-publishes from
	// there (from its cursor if that is older). nil: from the start of the
	// outbox.
	Rewind func(ctx context.Context) (int64, error)
}

func (c RelayConfig) withDefaults() RelayConfig {
	if c.PollInterval == 0 {
		c.PollInterval = 5 * time.Millisecond
	}
	if c.IdleInterval == 0 {
		c.IdleInterval = 50 * time.Millisecond
	}
	if c.IdleInterval > 0 {
		c.IdleInterval = max(c.IdleInterval, c.PollInterval)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.LeaderRetry == 0 {
		c.LeaderRetry = 2 * time.Second
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = 30 * time.Second
	}
	if c.StreamCheck == 0 {
		c.StreamCheck = 2 * time.Second
	}
	return c
}

// relayLockID makes one relay active among all instances.
const relayLockID = 0x686d705f72656c // "hmp_rel"

// Relay publishes committed events from the outbox to the bus. It only
// takes events whose transaction is older than every running one
// (pg_snapshot_xmin), so an event committed late by a long transaction is
// never skipped; it records its progress only after the bus stored the
// events, so a crash in between re-publishes (dropped by the stream's
// duplicate window, or by the consumers' applied-event record) and never
// loses. Events go out in (transaction id, sequence) order, which is
// version order for each entity as long as every writer locks the entity
// before it writes anything else (its transaction id is assigned at its
// first write or row lock); consumers must not rely on more.
type Relay struct {
	pool   *pgxpool.Pool
	pub    Publisher
	cfg    RelayConfig
	logger *slog.Logger
	now    func() time.Time

	published prometheus.Counter
	lag       prometheus.Gauge
	backlog   prometheus.Gauge
	errors    prometheus.Counter
	leader    prometheus.Gauge
	resets    prometheus.Counter
	giveUps   prometheus.Counter

	base   startstop.Base
	cycled startstop.Signal // fired after every cycle (tests wait on it)
	wake   chan struct{}    // Wake's signal, kept until an idle pause takes it
}

// NewRelay returns a stopped relay. reg may be nil.
func NewRelay(pool *pgxpool.Pool, pub Publisher, cfg RelayConfig, logger *slog.Logger, now func() time.Time, reg prometheus.Registerer) *Relay {
	r := &Relay{
		pool: pool, pub: pub, cfg: cfg.withDefaults(), logger: logger, now: now, wake: make(chan struct{}, 1),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_relay_published_total", Help: "Events published from the outbox to the bus."}),
		lag:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "hmp_relay_lag_seconds", Help: "Age of the oldest event the last relay cycle published (0 when idle)."}),
		errors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_relay_errors_total", Help: "Relay cycles that failed and will be retried."}),
		leader:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "hmp_relay_leader", Help: "1 when this instance runs the active relay."}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_relay_stream_resets_total",
			Help: "Times the relay found the events stream made anew and re-published from the outbox."}),
		giveUps: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_relay_leadership_given_up_total",
			Help: "Times the leader made no progress for the stall timeout and gave up leadership."}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hmp_outbox_oldest_unpublished_seconds",
			Help: "Age of the oldest committed event not yet published (0 when none), sampled every few seconds whether or not the relay runs."}),
	}
	if reg != nil {
		reg.MustRegister(r.published, r.lag, r.errors, r.leader, r.backlog, r.resets, r.giveUps)
	}
	return r
}

// Start runs the relay in the background until Stop. Safe to call twice.
func (r *Relay) Start(ctx context.Context) error {
	r.base.Start(ctx, r.run)
	return nil
}

// Stop ends the relay and waits for it. Safe to call twice.
func (r *Relay) Stop() {
	r.base.Stop()
}

// Wake tells the relay that events were committed: an idle relay reads
// the outbox at once instead of after its idle pause. It never blocks; a
// relay that is busy or not leading ignores it. The writers of this
// process call it after each commit; writes of other processes are found
// within IdleInterval.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Cycled returns a channel closed after the next completed cycle.
func (r *Relay) Cycled() <-chan struct{} {
	return r.cycled.Wait()
}

// sampleEvery is the period of the outbox backlog gauge.
const sampleEvery = 5 * time.Second

// sample keeps the backlog gauge current, independently of the relay's
// own health: a stuck relay is exactly when it matters.
func (r *Relay) sample(ctx context.Context) {
	store := NewStore(r.pool)
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		if age, err := store.OldestUnpublishedAge(ctx, r.now()); err == nil {
			r.backlog.Set(age.Seconds())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Relay) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.sample(ctx) })
	defer wg.Wait()
	for ctx.Err() == nil {
		err := r.lead(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.errors.Inc()
			r.logger.Warn("relay_error", "error", err.Error())
		}
		sleep(ctx, r.cfg.LeaderRetry)
	}
}

// acquireLock gets a connection and tries the relay lock on it, each
// attempt bounded by LeaderRetry (a frozen primary must not hold the relay
// in a connect or a query), retried with backoff for at most
// StallTimeout. It returns nil without error when another instance holds
// the lock.
func (r *Relay) acquireLock(ctx context.Context) (*pgxpool.Conn, error) {
	attempt := func() (*pgxpool.Conn, error) {
		actx, cancel := context.WithTimeout(ctx, max(r.cfg.LeaderRetry, 2*time.Second))
		defer cancel()
		conn, err := r.pool.Acquire(actx)
		if err != nil {
			return nil, fmt.Errorf("acquire relay connection: %w", err)
		}
		var ok bool
		if err := conn.QueryRow(actx, `SELECT pg_try_advisory_lock($1)`, int64(relayLockID)).Scan(&ok); err != nil {
			// The connection may be what hangs: never back to the pool.
			c := conn.Hijack()
			closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(actx), time.Second)
			_ = c.Close(closeCtx)
			cancelClose()
			return nil, fmt.Errorf("relay lock: %w", err)
		}
		if !ok {
			conn.Release()
			return nil, nil
		}
		return conn, nil
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 100*time.Millisecond, r.cfg.LeaderRetry
	conn, err := backoff.Retry(ctx, func() (*pgxpool.Conn, error) {
		conn, err := attempt()
		if err != nil && ctx.Err() != nil {
			return nil, backoff.Permanent(ctx.Err())
		}
		return conn, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(r.cfg.StallTimeout))
	if err != nil && ctx.Err() != nil {
		return nil, nil
	}
	return conn, err
}

// errStalled is returned by lead when the leader gave up.
var errStalled = errors.New("no progress")

// lead takes the relay lock on a dedicated connection and relays until the
// context ends or it cannot make progress for StallTimeout. It returns nil
// when another instance holds the lock.
func (r *Relay) lead(ctx context.Context) (err error) {
	conn, err := r.acquireLock(ctx)
	if err != nil || conn == nil {
		return err
	}
	r.leader.Set(1)
	// The outbox read spans every partition of events (it orders by
	// transaction id, not by organization), so pruning has nothing to
	// remove and a custom plan is the generic one, planned afresh each
	// cycle: the planner weighs every index of every partition, tens of
	// milliseconds a cycle at 64 partitions (10 K organizations) against
	// 0.2 ms unpartitioned, and the plan cache kept choosing that custom
	// plan over the generic one. This session plans its statements once;
	// only the relay's statements run here until the reset below.
	_, genericErr := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`)
	defer func() {
		r.leader.Set(0)
		closeConn := func() {
			c := conn.Hijack()
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = c.Close(closeCtx)
			cancel()
		}
		if errors.Is(err, errStalled) {
			// The connection itself may be what hangs: close it, which
			// ends the session and so releases the lock server-side.
			r.giveUps.Inc()
			closeConn()
			return
		}
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(unlockCtx, `SELECT pg_advisory_unlock($1)`, int64(relayLockID))
		// The pool's other users must not inherit the generic plans: a
		// connection that cannot be reset is closed instead.
		if _, err := conn.Exec(unlockCtx, `RESET plan_cache_mode`); err != nil {
			closeConn()
			return
		}
		conn.Release()
	}()
	if genericErr != nil {
		return fmt.Errorf("relay session: %w", postgres.Translate(genericErr))
	}
	r.logger.Info("relay_leading")
	var (
		cur   relayCursor
		epoch *time.Time
	)
	err = conn.QueryRow(ctx, `SELECT cursor_tx::text::bigint, cursor_seq, horizon::text::bigint, stream_epoch FROM relay_state WHERE id = 1`).
		Scan(&cur.tx, &cur.seq, &cur.horizon, &epoch)
	if err != nil {
		return fmt.Errorf("read relay state: %w", postgres.Translate(err))
	}
	if epoch != nil {
		cur.epoch = *epoch
	}
	watcher, _ := r.pub.(StreamWatcher)
	checkStream := watcher != nil // at once, then now and then and after failures
	var lastCheck time.Time
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = min(r.cfg.PollInterval, 5*time.Second), 5*time.Second
	attempt := func() (int, error) {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.StallTimeout)
		defer cancel()
		var n int
		err := func() error {
			if checkStream || (watcher != nil && time.Since(lastCheck) >= r.cfg.StreamCheck) {
				if err := r.checkStream(cctx, conn.Conn(), watcher, &cur); err != nil {
					return err
				}
				checkStream, lastCheck = false, time.Now()
			}
			var err error
			n, err = r.cycle(cctx, conn.Conn(), &cur)
			return err
		}()
		r.cycled.Fire()
		if err == nil {
			return n, nil
		}
		if ctx.Err() != nil {
			return 0, backoff.Permanent(ctx.Err())
		}
		r.errors.Inc()
		r.logger.Warn("relay_cycle_failed", "error", err.Error())
		checkStream = watcher != nil
		if conn.Conn().IsClosed() {
			return 0, backoff.Permanent(err)
		}
		return 0, err
	}
	idle := r.cfg.PollInterval // the next pause after an empty cycle
	for ctx.Err() == nil {
		n, err := backoff.Retry(ctx, attempt, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(r.cfg.StallTimeout))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if conn.Conn().IsClosed() {
				return err
			}
			r.logger.Error("relay_giving_up_leadership", "stall_timeout", r.cfg.StallTimeout.String(), "error", err.Error())
			return fmt.Errorf("%w for %s, gave up leadership: %w", errStalled, r.cfg.StallTimeout, err)
		}
		switch {
		case n >= r.cfg.BatchSize:
			idle = r.cfg.PollInterval
		case n > 0:
			// Events are flowing: a steady pause, which wakes do not cut
			// short, so that a busy relay publishes batches, not one
			// event per commit.
			idle = r.cfg.PollInterval
			sleep(ctx, r.cfg.PollInterval)
		case r.cfg.IdleInterval < 0:
			sleep(ctx, r.cfg.PollInterval)
		default:
			r.pause(ctx, idle)
			idle = min(2*idle, r.cfg.IdleInterval)
		}
	}
	return nil
}

// pause waits d, or less when woken.
func (r *Relay) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-r.wake:
	}
}

// checkStream compares the stream's creation time with the one on
// record. A new stream has lost whatever the old one held (its sequences
// start over): the relay rewinds its cursor to the oldest event a consumer
// may still need and resets the recorded stream sequence, so consistent
// reads waiting on it are released by the new stream's progress.
func (r *Relay) checkStream(ctx context.Context, conn *pgx.Conn, w StreamWatcher, cur *relayCursor) error {
	epoch, err := w.StreamEpoch(ctx)
	if err != nil {
		return fmt.Errorf("check stream: %w", err)
	}
	epoch = epoch.UTC().Truncate(time.Microsecond) // as PostgreSQL keeps it
	if epoch.Equal(cur.epoch) {
		return nil
	}
	if cur.epoch.IsZero() {
		if _, err := conn.Exec(ctx, `UPDATE relay_state SET stream_epoch = $1 WHERE id = 1`, epoch); err != nil {
			return fmt.Errorf("record stream epoch: %w", postgres.Translate(err))
		}
		cur.epoch = epoch
		return nil
	}
	var from int64
	if r.cfg.Rewind != nil {
		if from, err = r.cfg.Rewind(ctx); err != nil {
			return fmt.Errorf("find where to re-publish from: %w", err)
		}
	}
	next := *cur
	if from < cur.tx || (from == cur.tx && cur.seq > 0) {
		next.tx, next.seq = from, 0
	}
	next.horizon = min(cur.horizon, next.tx)
	next.streamSeq, next.unpersisted, next.epoch = 0, false, epoch
	_, err = conn.Exec(ctx, `
		UPDATE relay_state SET cursor_tx = $1::bigint::text::xid8, cursor_seq = $2, horizon = $3::bigint::text::xid8,
			stream_seq = 0, stream_epoch = $4, updated_at = $5
		WHERE id = 1`, next.tx, next.seq, next.horizon, epoch, r.now())
	if err != nil {
		return fmt.Errorf("record stream reset: %w", postgres.Translate(err))
	}
	r.resets.Inc()
	r.logger.Warn("relay_stream_reset", "old_epoch", cur.epoch, "new_epoch", epoch, "from_tx", next.tx)
	next.persisted = time.Now()
	*cur = next
	return nil
}

const relayRead = `
	WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
	SELECT snap.xmin::text::bigint, e.tx_id::text::bigint,
	       e.seq, e.id, e.event_type, e.org_id, e.property_id, e.user_id, e.entity_type, e.entity_id,
	       e.aggregate_version, e.occurred_at, e.metadata
	FROM snap LEFT JOIN LATERAL (
		SELECT * FROM events
		WHERE (tx_id, seq) > ($1::bigint::text::xid8, $2) AND tx_id < snap.xmin
		ORDER BY tx_id, seq
		LIMIT $3
	) e ON true`

// relayCursor is where the next cycle starts: after (tx, seq); every event
// of a transaction older than horizon is published.
type relayCursor struct {
	tx, seq, horizon int64
	persisted        time.Time
	dirty            bool
	// unpersisted is set when events went out since the last persist;
	// streamSeq is the highest stream sequence they got.
	unpersisted bool
	streamSeq   uint64
	// epoch is the creation time of the stream published to (zero: not
	// known yet).
	epoch time.Time
}

// persistEvery bounds how stale the recorded horizon gets while no event
// flows (readers waiting on it scan the events since it); persistPublished
// bounds how long published events stay unrecorded, which is how long a
// consistent read may wait for the record. Recording less often than every
// cycle spares the database a commit per cycle under load.
const (
	persistEvery     = time.Second
	persistPublished = 20 * time.Millisecond
)

// readOutbox reads the next batch after cur in commit order, with the
// snapshot's xmin and the transaction of the batch's last event.
func (r *Relay) readOutbox(ctx context.Context, conn *pgx.Conn, cur *relayCursor) (xmin, lastTx int64, events []domain.Event, err error) {
	rows, err := conn.Query(ctx, relayRead, cur.tx, cur.seq, r.cfg.BatchSize)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("read outbox: %w", postgres.Translate(err))
	}
	for rows.Next() {
		var (
			txID *int64
			seq  *int64
			e    domain.Event
			meta []byte
			et   *string
		)
		var entity *string
		var agg *int
		var occurred *time.Time
		var id, org, user, entityID *domain.ID
		if err := rows.Scan(&xmin, &txID, &seq, &id, &et, &org, &e.PropertyID, &user, &entity, &entityID, &agg, &occurred, &meta); err != nil {
			rows.Close()
			return 0, 0, nil, fmt.Errorf("scan outbox: %w", err)
		}
		if seq == nil {
			continue // no event: the LEFT JOIN's empty row
		}
		e.Sequence, e.ID, e.Type, e.OrgID, e.UserID = *seq, *id, domain.EventType(*et), *org, *user
		e.EntityType, e.EntityID, e.AggregateVersion, e.Timestamp = domain.EntityType(*entity), *entityID, *agg, *occurred
		e.Metadata, e.Version = meta, domain.EventVersion
		lastTx = *txID
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, nil, fmt.Errorf("read outbox: %w", postgres.Translate(err))
	}
	return xmin, lastTx, events, nil
}

// cycle publishes the next batch and records the progress; it returns the
// number of events published.
func (r *Relay) cycle(ctx context.Context, conn *pgx.Conn, cur *relayCursor) (int, error) {
	xmin, lastTx, events, err := r.readOutbox(ctx, conn, cur)
	if err != nil {
		return 0, err
	}
	var streamSeq uint64
	if len(events) > 0 {
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
		streamSeq, err = r.pub.PublishEvents(pctx, events)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("publish %d events: %w", len(events), err)
		}
		r.published.Add(float64(len(events)))
		r.lag.Set(r.now().Sub(events[0].Timestamp).Seconds())
	} else {
		r.lag.Set(0)
	}
	// A full batch may have left part of its last transaction's events:
	// the horizon stops before that transaction. Otherwise every
	// transaction older than xmin is done.
	next := relayCursor{tx: xmin, seq: 0, horizon: xmin, persisted: cur.persisted,
		unpersisted: cur.unpersisted || len(events) > 0, streamSeq: max(cur.streamSeq, streamSeq), epoch: cur.epoch}
	if len(events) == r.cfg.BatchSize {
		next.tx, next.seq, next.horizon = lastTx, events[len(events)-1].Sequence, lastTx
	}
	next.horizon = max(next.horizon, cur.horizon)
	next.dirty = cur.dirty || next.horizon != cur.horizon
	// Persist soon after a publish (a consistent read waits until the
	// stream sequence is on record), and otherwise now and then: the
	// relay's own update uses a transaction id, so persisting every idle
	// cycle would never go idle.
	// Real elapsed time, not the business clock (tests freeze that).
	since := time.Since(cur.persisted)
	if (next.unpersisted && since >= persistPublished) || (next.dirty && since >= persistEvery) {
		_, err = conn.Exec(ctx, `
			UPDATE relay_state SET cursor_tx = $1::bigint::text::xid8, cursor_seq = $2, horizon = GREATEST(horizon, $3::bigint::text::xid8),
				stream_seq = GREATEST(stream_seq, $4), updated_at = $5
			WHERE id = 1`, next.tx, next.seq, next.horizon, int64(next.streamSeq), r.now())
		if err != nil {
			return 0, fmt.Errorf("record relay progress: %w", postgres.Translate(err))
		}
		next.persisted, next.dirty, next.unpersisted = time.Now(), false, false
	}
	*cur = next
	return len(events), nil
}

// Covered reports whether every event committed before this call has been
// published, and if so the stream sequence that covers them. A read that
// must reflect earlier writes waits for this, then for its consumer to
// pass that sequence.
func (s *Store) Covered(ctx context.Context) (bool, uint64, error) {
	var (
		ok  bool
		seq int64
	)
	err := s.pool.QueryRow(ctx, `
		WITH snap AS (SELECT pg_snapshot_xmax(pg_current_snapshot()) AS xmax)
		SELECT st.horizon >= snap.xmax OR NOT EXISTS (
		           SELECT 1 FROM events e WHERE e.tx_id >= st.horizon AND e.tx_id < snap.xmax),
		       st.stream_seq
		FROM relay_state st CROSS JOIN snap WHERE st.id = 1`).Scan(&ok, &seq)
	if err != nil {
		return false, 0, fmt.Errorf("check relay progress: %w", postgres.Translate(err))
	}
	return ok, uint64(seq), nil
}

// oldestUnpublishedSQL reads the first unpublished event in publishing
// order: an index range of one row per partition (events_tx), however
// long the backlog or the table. A min() over the backlog read every
// unpublished row and took 34 s at 1 M organizations, competing with the
// requests; the first event in (tx_id, seq) order is the one that has
// waited longest to be published, which is what the gauge is for.
const oldestUnpublishedSQL = `
	SELECT first.occurred_at FROM relay_state st
	CROSS JOIN LATERAL (
		SELECT e.occurred_at FROM events e
		WHERE (e.tx_id, e.seq) > (st.cursor_tx, st.cursor_seq)
		ORDER BY e.tx_id, e.seq LIMIT 1) first
	WHERE st.id = 1`

// OldestUnpublishedAge returns how long the first committed but not yet
// published event has waited (0 when none).
func (s *Store) OldestUnpublishedAge(ctx context.Context, now time.Time) (time.Duration, error) {
	var oldest time.Time
	err := s.pool.QueryRow(ctx, oldestUnpublishedSQL).Scan(&oldest)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("relay lag: %w", postgres.Translate(err))
	}
	return max(now.Sub(oldest), 0), nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
