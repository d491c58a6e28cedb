package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BeforeCommit is a statement that must share the commit of whatever a
// request writes: WithTx runs it as the last statement of every
// transaction it commits under a context that carries it (see
// WithBeforeCommit). An error rolls the transaction back. It must be safe
// to run more than once (a transaction retried, or a request that commits
// twice).
type BeforeCommit func(ctx context.Context, tx pgx.Tx) error

type beforeCommitKey struct{}

// WithBeforeCommit returns ctx carrying hook. The HTTP edge uses it to
// commit the mark of an idempotency key with the write it guards, without
// the services knowing of keys.
func WithBeforeCommit(ctx context.Context, hook BeforeCommit) context.Context {
	return context.WithValue(ctx, beforeCommitKey{}, hook)
}

// beforeCommit returns the hook ctx carries, or nil.
func beforeCommit(ctx context.Context) BeforeCommit {
	h, _ := ctx.Value(beforeCommitKey{}).(BeforeCommit)
	return h
}

// SendBatch sends b as one implicit transaction, or, when ctx carries a
// BeforeCommit hook, inside WithTx so that the hook commits with it. Errors
// are the driver's, untranslated (callers tell unique violations apart).
func SendBatch(ctx context.Context, pool *pgxpool.Pool, b *pgx.Batch) error {
	if beforeCommit(ctx) == nil {
		return pool.SendBatch(ctx, b).Close()
	}
	return WithTx(ctx, pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
}

// Exec runs one write statement as its own transaction, or, when ctx
// carries a BeforeCommit hook, inside WithTx so that the hook commits with
// it. Errors are the driver's, untranslated.
func Exec(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) error {
	if beforeCommit(ctx) == nil {
		_, err := pool.Exec(ctx, sql, args...)
		return err
	}
	return WithTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	})
}
