package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
)

// Beginner starts transactions; *pgxpool.Pool and pgx.Tx (savepoints) both
// satisfy it.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// maxTxAttempts bounds the runs of a transaction that keeps losing
// serialization races or deadlocks.
const maxTxAttempts = 5

// txBackOff is the wait between two runs of a transaction that lost a
// race: short (5 ms, doubling, jittered, at most 50 ms), because the
// winner has committed by then and a request is waiting.
func txBackOff() backoff.BackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 5 * time.Millisecond, RandomizationFactor: 0.5,
		Multiplier: 2, MaxInterval: 50 * time.Millisecond}
}

// serializationRetry runs op up to maxTxAttempts times while it fails with
// a serialization failure or a deadlock, and returns op's last error
// untouched (also when ctx ends between two runs).
func serializationRetry(ctx context.Context, op func() error) error {
	var last error
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		last = op()
		if last != nil && !Serialization(last) {
			return struct{}{}, backoff.Permanent(last)
		}
		return struct{}{}, last
	}, backoff.WithBackOff(txBackOff()), backoff.WithMaxTries(maxTxAttempts), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return last
	}
	return nil
}

// WithTx runs fn in a transaction and commits it. It rolls back when fn
// returns an error or panics, and runs fn again (up to five times in all)
// when the server aborted the transaction for a serialization failure or a
// deadlock, so fn must be safe to repeat.
func WithTx(ctx context.Context, db Beginner, fn func(pgx.Tx) error) error {
	return serializationRetry(ctx, func() error { return runTx(ctx, db, fn) })
}

// Retry runs fn, a single statement in its own implicit transaction, again
// (up to five times in all) when the server aborted it for a
// serialization failure or a deadlock. Errors are translated.
func Retry(ctx context.Context, fn func() error) error {
	return Translate(serializationRetry(ctx, fn))
}

func runTx(ctx context.Context, db Beginner, fn func(pgx.Tx) error) (err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", Translate(err))
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", Translate(err))
	}
	return nil
}
