package reports

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// Progress is what the consistency wait asks of the pipeline.
type Progress interface {
	// Reflected reports whether every event of org written by a
	// transaction older than below is in the projection. below 0 means:
	// every event committed before the check; it returns the bound it used,
	// so that later checks of the same read hold to it (and are not chased
	// by newer writes).
	Reflected(ctx context.Context, org domain.ID, below uint64) (bool, uint64, error)
	// Covered and AckFloor are the stream-wide fallback, for an event that
	// will never be applied (dead-lettered: the projector terminated it):
	// whether the relay has published everything committed so far, up to
	// which stream sequence, and how far the projector has acknowledged.
	Covered(ctx context.Context) (bool, uint64, error)
	AckFloor(ctx context.Context) (uint64, error)
}

// WaiterConfig tunes the consistency wait. The zero value of each field
// means its default.
type WaiterConfig struct {
	// Timeout is how long a read waits before it answers ErrUnavailable.
	// Default 5 s.
	Timeout time.Duration
	// StreamWide makes a read wait for the stream-wide floor (every
	// organization's events) instead of its organization's: the behaviour
	// before per-organization waits, kept to measure against and to roll
	// back to. Default false.
	StreamWide bool
}

// Waiter makes a read reflect every write of its organization committed
// before it started.
type Waiter struct {
	progress Progress
	cfg      WaiterConfig
}

// NewWaiter returns a Waiter asking p.
func NewWaiter(p Progress, cfg WaiterConfig) *Waiter {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Waiter{progress: p, cfg: cfg}
}

// errNotYet makes the wait poll again.
var errNotYet = errors.New("not reflected yet")

// Wait blocks until every event of org committed before the call is in
// the projection. It waits for nothing else: another organization's
// events under retry, or stream sequences (which start over when the
// stream is made anew). Only when the organization has an event that is
// not applied does it also accept the stream-wide floor having passed
// everything committed before the read: the event was dead-lettered, and
// waiting cannot help. The first checks take their own snapshots, so any
// token handed out earlier is covered and needs no value of its own here.
// It answers ErrUnavailable after the timeout, never stale data.
func (w *Waiter) Wait(ctx context.Context, org domain.ID) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	var (
		below, target uint64
		covered       bool
	)
	poll := func() error {
		if !w.cfg.StreamWide {
			ok, used, err := w.progress.Reflected(ctx, org, below)
			if err != nil {
				return err
			}
			below = used
			if ok {
				return nil
			}
		}
		var err error
		// The fallback failing (the bus away, the consumer being made
		// anew) only means it cannot release the read yet.
		if !covered {
			if covered, target, err = w.progress.Covered(ctx); err != nil || !covered {
				return errNotYet
			}
		}
		if floor, err := w.progress.AckFloor(ctx); err != nil || floor < target {
			return errNotYet
		}
		return nil
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.Multiplier, bo.MaxInterval, bo.RandomizationFactor = time.Millisecond, 2, 25*time.Millisecond, 0.2
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := poll()
		if err != nil && !errors.Is(err, errNotYet) {
			// The database or the bus failing: answer with that, unless it
			// is only the deadline cutting a check short.
			if ctx.Err() != nil {
				return struct{}{}, backoff.Permanent(ctx.Err())
			}
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return fmt.Errorf("%w: the write is not reflected in reports yet; retry shortly", domain.ErrUnavailable)
	default:
		return err
	}
}

// AppliedProgress answers the consistency wait from PostgreSQL: the
// events of an organization (the outbox) against the projector's
// applied-event records, from the organization's watermark on.
type AppliedProgress struct {
	pool      *pgxpool.Pool
	now       func() time.Time
	retention time.Duration

	advanceEvery time.Duration // advanceEvery, or 0 in tests
	mu           sync.Mutex
	advanced     map[domain.ID]time.Time // when a watermark was last advanced here
}

// NewAppliedProgress returns an AppliedProgress. retention is how long
// the projector keeps applied-event records: an event older than that
// counts as applied (its record may be pruned; and if it truly was never
// applied, no wait can help).
func NewAppliedProgress(pool *pgxpool.Pool, now func() time.Time, retention time.Duration) *AppliedProgress {
	return &AppliedProgress{pool: pool, now: now, retention: retention, advanceEvery: advanceEvery, advanced: map[domain.ID]time.Time{}}
}

// reflectedCheck looks for an event of the organization, up to the
// bound, that the projector has not applied (Unapplied: from the
// organization's watermark, inside the retention). The bound is the
// check's own snapshot's xmax on the first call: every transaction
// committed before it is below.
func reflectedCheck() string {
	return `
	WITH snap AS (SELECT pg_current_snapshot() AS s),
	bound AS (
		SELECT CASE WHEN $2::bigint = 0 THEN pg_snapshot_xmax(s) ELSE $2::bigint::text::xid8 END AS below,
		       pg_snapshot_xmin(s) AS xmin
		FROM snap),
	mark AS (SELECT coalesce((SELECT applied_below FROM consistency_watermarks WHERE org_id = $1), '0'::xid8) AS from_tx)
	SELECT bound.below::text::bigint, bound.xmin::text::bigint, mark.from_tx::text::bigint,
	       NOT EXISTS (
	           SELECT 1 FROM events e
	           WHERE e.org_id = $1 AND e.tx_id >= mark.from_tx AND e.tx_id < bound.below AND ` + Unapplied("$1", "$3") + `)
	FROM bound, mark`
}

// advanceEvery bounds how often one instance moves an organization's
// watermark: once a second keeps the checks short without a write per
// read.
const advanceEvery = time.Second

// Reflected reports whether every event of org written by a transaction
// older than below (0: older than this check) is applied, and the bound it
// used; see Progress.
func (p *AppliedProgress) Reflected(ctx context.Context, org domain.ID, below uint64) (bool, uint64, error) {
	var (
		used, xmin, from int64
		ok               bool
	)
	floor := p.now().Add(-p.retention)
	if err := p.pool.QueryRow(ctx, reflectedCheck(), org, int64(below), floor).Scan(&used, &xmin, &from, &ok); err != nil {
		return false, 0, fmt.Errorf("check consistency: %w", postgres.Translate(err))
	}
	if ok {
		// Every event below the bound is applied, and every transaction
		// older than xmin has ended (so its events were visible here).
		if mark := min(used, xmin); mark > from && p.due(org) {
			if err := p.advance(ctx, org, mark); err != nil {
				return false, 0, err
			}
		}
	}
	return ok, uint64(used), nil
}

// due reports whether org's watermark was not advanced here lately, and
// notes that it is now.
func (p *AppliedProgress) due(org domain.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if t, seen := p.advanced[org]; seen && now.Sub(t) < p.advanceEvery {
		return false
	}
	if len(p.advanced) >= 100_000 {
		clear(p.advanced) // only a rate limit: forgetting costs one write per organization
	}
	p.advanced[org] = now
	return true
}

func (p *AppliedProgress) advance(ctx context.Context, org domain.ID, mark int64) error {
	_, err := p.pool.Exec(ctx, `
		INSERT INTO consistency_watermarks AS w (org_id, applied_below, updated_at)
		VALUES ($1, $2::bigint::text::xid8, $3)
		ON CONFLICT (org_id) DO UPDATE SET applied_below = EXCLUDED.applied_below, updated_at = EXCLUDED.updated_at
		WHERE w.applied_below < EXCLUDED.applied_below`, org, mark, p.now())
	if err != nil {
		return fmt.Errorf("advance consistency watermark: %w", postgres.Translate(err))
	}
	return nil
}

// OldestUnapplied returns the oldest transaction id with an event (inside
// the retention, above its organization's watermark) the projector has not
// applied, or the current snapshot's
// xmin when there is none: where the relay re-publishes from after the
// events stream was made anew. It scans the outbox of the retention
// period: a recovery step, not a hot path.
func (p *AppliedProgress) OldestUnapplied(ctx context.Context) (int64, error) {
	var tx int64
	err := p.pool.QueryRow(ctx, `
		SELECT coalesce(min(e.tx_id), pg_snapshot_xmin(pg_current_snapshot()))::text::bigint
		FROM events e
		WHERE `+Unapplied("e.org_id", "$1"),
		p.now().Add(-p.retention)).Scan(&tx)
	if err != nil {
		return 0, fmt.Errorf("oldest unapplied event: %w", postgres.Translate(err))
	}
	return tx, nil
}
