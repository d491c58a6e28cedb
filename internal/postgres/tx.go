package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Beginner starts transactions; *pgxpool.Pool and pgx.Tx (savepoints) both
// satisfy it.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// maxTxAttempts bounds the retries of a transaction that lost a
// serialization race or a deadlock.
const maxTxAttempts = 5

// WithTx runs fn in a transaction and commits it. It rolls back when fn
// returns an error or panics, and runs fn again (up to five times in all)
// when the server aborted the transaction for a serialization failure or a
// deadlock, so fn must be safe to repeat.
func WithTx(ctx context.Context, db Beginner, fn func(pgx.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = runTx(ctx, db, fn)
		if err == nil || !retryable(err) || attempt == maxTxAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

// Retry runs fn, a single statement in its own implicit transaction, again
// (up to five times in all) when the server aborted it for a
// serialization failure or a deadlock. Errors are translated.
func Retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) || attempt == maxTxAttempts {
			return Translate(err)
		}
		select {
		case <-ctx.Done():
			return Translate(err)
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
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

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return false
}
