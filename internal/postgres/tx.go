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
	if _, nested := db.(pgx.Tx); !nested {
		if hook, ok := ctx.Value(beforeCommitKey{}).(BeforeCommit); ok {
			if err = hook(ctx, tx); err != nil {
				return err
			}
		}
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", Translate(err))
	}
	return nil
}

// BeforeCommit runs inside a transaction just before its commit; its error
// rolls the transaction back instead.
type BeforeCommit func(ctx context.Context, tx pgx.Tx) error

type beforeCommitKey struct{}

// WithBeforeCommit returns a copy of ctx under which every outermost
// transaction of WithTx and SendBatch runs hook just before it commits (a
// savepoint does not), so that what hook writes commits with the write or
// not at all (the idempotency key of a request is marked used this way).
// hook may run more than once: on each retried run and in each
// transaction of ctx.
func WithBeforeCommit(ctx context.Context, hook BeforeCommit) context.Context {
	return context.WithValue(ctx, beforeCommitKey{}, hook)
}

// BeforeCommitOf returns the BeforeCommit hook ctx carries, for a caller
// that runs several requests' writes in one transaction and must run each
// one's hook itself (see WithoutBeforeCommit).
func BeforeCommitOf(ctx context.Context) (BeforeCommit, bool) {
	hook, ok := ctx.Value(beforeCommitKey{}).(BeforeCommit)
	return hook, ok
}

// WithoutBeforeCommit returns a copy of ctx that carries no BeforeCommit
// hook: a transaction shared by several requests runs their hooks itself.
func WithoutBeforeCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, beforeCommitKey{}, nil)
}

// BatchBeginner sends batches and starts transactions (*pgxpool.Pool).
type BatchBeginner interface {
	Beginner
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// SendBatch sends b as one implicit transaction (one round trip), or, when
// ctx carries a BeforeCommit hook, in a transaction of WithTx that runs it.
// Errors are returned untranslated, as pgx gives them.
func SendBatch(ctx context.Context, db BatchBeginner, b *pgx.Batch) error {
	if _, ok := ctx.Value(beforeCommitKey{}).(BeforeCommit); !ok {
		return db.SendBatch(ctx, b).Close()
	}
	return WithTx(ctx, db, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
}
