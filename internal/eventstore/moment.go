package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// Point in time. A read "as of X" must hold exactly the changes committed
// at or before X, in commit order, and give the same answer whenever it is
// asked. Two rules on the organization's chain head make the events
// stamped at or before X that set:
//
//   - Stamp: an event's time is taken under the chain-head lock, where its
//     chain position is taken, and is never earlier than the previous
//     event's time nor at or before a sealed moment. Time follows chain
//     order, so the events at or before X are a prefix of the chain.
//   - Seal: a read as of X first waits for the appends in flight (they
//     hold the head's lock until they end) and records X as sealed, so no
//     append that commits later can be stamped at or before X.
//
// The append itself refuses an event stamped against these rules.

// lockHead locks org's chain head until the transaction ends and reads
// the last event time and the sealed moment.
const lockHead = `SELECT last_at, sealed_at FROM event_chain_heads WHERE org_id = $1 FOR NO KEY UPDATE`

// createHead makes and locks the head of an organization without one: an
// empty chain (position 0, no hash), which the first append extends as
// it would have created it.
const createHead = `
	INSERT INTO event_chain_heads AS h (org_id, pos, prev_hash, hash) VALUES ($1, 0, '\x', '\x')
	ON CONFLICT (org_id) DO UPDATE SET pos = h.pos
	RETURNING last_at, sealed_at`

// Stamp returns the time for the event tx will append for org, and holds
// org's chain head until tx ends: call it once the rows the write changes
// are locked, and use the time for the event and for every time the write
// records of that change. clock is read under the lock; the time is
// clock's reading (UTC, microseconds) unless that is before the chain's
// last event (then that event's time) or not after the sealed moment
// (then a microsecond after it).
func Stamp(ctx context.Context, tx pgx.Tx, org domain.ID, clock func() time.Time) (time.Time, error) {
	var last, sealed *time.Time
	err := tx.QueryRow(ctx, lockHead, org).Scan(&last, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		err = tx.QueryRow(ctx, createHead, org).Scan(&last, &sealed)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("stamp event time: %w", postgres.Translate(err))
	}
	return stampAfter(clock(), last, sealed), nil
}

// StampEach is Stamp for the events tx will append for several
// organizations: it locks their chain heads in the order of orgs (callers
// give every transaction the same order, sorted, so that two of them
// never wait for each other), in one round trip, then reads clock once
// under all the locks. times[i] is the time for orgs[i].
func StampEach(ctx context.Context, tx pgx.Tx, orgs []domain.ID, clock func() time.Time) ([]time.Time, error) {
	last := make([]*time.Time, len(orgs))
	sealed := make([]*time.Time, len(orgs))
	missing := make([]bool, len(orgs))
	b := &pgx.Batch{}
	for i, org := range orgs {
		b.Queue(lockHead, org).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&last[i], &sealed[i])
			if errors.Is(err, pgx.ErrNoRows) {
				missing[i] = true
				return nil
			}
			return err
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("stamp event times: %w", postgres.Translate(err))
	}
	for i, org := range orgs {
		if !missing[i] {
			continue
		}
		if err := tx.QueryRow(ctx, createHead, org).Scan(&last[i], &sealed[i]); err != nil {
			return nil, fmt.Errorf("stamp event time: %w", postgres.Translate(err))
		}
	}
	now := clock()
	times := make([]time.Time, len(orgs))
	for i := range orgs {
		times[i] = stampAfter(now, last[i], sealed[i])
	}
	return times, nil
}

// stampAfter is the rule of Stamp.
func stampAfter(now time.Time, last, sealed *time.Time) time.Time {
	at := now.UTC().Truncate(time.Microsecond)
	if last != nil && at.Before(*last) {
		at = last.UTC()
	}
	if sealed != nil && !at.After(*sealed) {
		at = sealed.UTC().Add(time.Microsecond)
	}
	return at
}

// Execer runs a statement: a pool or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Seal makes moment x final for org before a read as of x: it waits for
// the organization's appends in flight to end (each holds the chain head
// from its Stamp to its commit) and records x, so every event stamped at
// or before x has committed and none can be stamped so later. x must not
// be in the future: later events would be stamped after it. An
// organization without a chain head gets an empty one to hold the mark.
func Seal(ctx context.Context, db Execer, org domain.ID, x time.Time) error {
	_, err := db.Exec(ctx, `
		INSERT INTO event_chain_heads AS h (org_id, pos, prev_hash, hash, sealed_at) VALUES ($1, 0, '\x', '\x', $2)
		ON CONFLICT (org_id) DO UPDATE SET sealed_at = $2 WHERE h.sealed_at IS NULL OR h.sealed_at < $2`,
		org, x.UTC().Truncate(time.Microsecond))
	if err != nil {
		return fmt.Errorf("seal moment %s: %w", x.Format(time.RFC3339Nano), postgres.Translate(err))
	}
	return nil
}
