package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// Every fault of the database that a later try can outlive is transient
// and translates to ErrUnavailable; an error of the statement or its data
// is not. The faults are real ones, raised by a real server.
func TestTransient(t *testing.T) {
	t.Parallel()
	pool := cluster.NewPool(t)
	ctx := context.Background()
	raise := func(code string) error {
		_, err := pool.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN RAISE EXCEPTION 'fault' USING ERRCODE = '%s'; END $$`, code))
		return err
	}
	for _, code := range []string{"53100", "53200", "53300", "57P01", "57P02", "57P03", "57P05", "25006", "57014", "55P03",
		"40001", "40P01", "08006", "58000", "58030"} {
		t.Run("sqlstate "+code, func(t *testing.T) {
			err := raise(code)
			if !postgres.Transient(err) || !errors.Is(postgres.Translate(err), domain.ErrUnavailable) {
				t.Fatalf("%v: transient %v, translated %v", err, postgres.Transient(err), postgres.Translate(err))
			}
		})
	}
	for _, code := range []string{"22003", "23514", "42703", "P0001", "XX000", "57P04", "58P01"} {
		t.Run("not transient "+code, func(t *testing.T) {
			err := raise(code)
			if err == nil || postgres.Transient(err) || errors.Is(postgres.Translate(err), domain.ErrUnavailable) {
				t.Fatalf("%v: transient %v, translated %v", err, postgres.Transient(err), postgres.Translate(err))
			}
		})
	}
	t.Run("statement timeout", func(t *testing.T) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = '10ms'`); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, `SELECT pg_sleep(5)`)
		if !postgres.Transient(err) {
			t.Fatalf("%v is not transient", err)
		}
	})
	t.Run("connection killed in the middle of a query", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, pool.Config().ConnConfig.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		pid := conn.PgConn().PID()
		go func() {
			// Terminate once the query runs.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				var active bool
				_ = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%')`, pid).Scan(&active)
				if active {
					_, _ = pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
					return
				}
			}
		}()
		_, err = conn.Exec(ctx, `SELECT pg_sleep(30)`)
		if !postgres.Transient(err) {
			t.Fatalf("%v (%T) is not transient", err, err)
		}
		// And the dead connection's next query.
		_, err = conn.Exec(ctx, `SELECT 1`)
		if !postgres.Transient(err) {
			t.Fatalf("%v (%T) is not transient", err, err)
		}
	})
	t.Run("deadline during I/O", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		_, err := pool.Exec(dctx, `SELECT pg_sleep(5)`)
		if !postgres.Transient(err) || !errors.Is(postgres.Translate(err), domain.ErrUnavailable) {
			t.Fatalf("%v is not transient", err)
		}
	})
	t.Run("cancelled by the caller", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := pool.Exec(cctx, `SELECT 1`)
		if err == nil || postgres.Transient(err) {
			t.Fatalf("%v is transient", err)
		}
	})
	t.Run("closed pool", func(t *testing.T) {
		closed, err := postgres.Open(ctx, pool.Config().ConnString(), postgres.PoolConfig{MaxConns: 1, MinConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		closed.Close()
		_, err = closed.Exec(ctx, `SELECT 1`)
		if !postgres.Transient(err) || !errors.Is(postgres.Translate(err), domain.ErrUnavailable) {
			t.Fatalf("%v (%T) is not transient", err, err)
		}
	})
	t.Run("refused connection", func(t *testing.T) {
		_, err := pgconn.Connect(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
		if !postgres.Transient(err) {
			t.Fatalf("%v is not transient", err)
		}
	})
	t.Run("not found and conflict keep their translation", func(t *testing.T) {
		if !errors.Is(postgres.Translate(pgx.ErrNoRows), domain.ErrNotFound) || postgres.Transient(pgx.ErrNoRows) {
			t.Fatal("no rows")
		}
		_, err := pool.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'dup' USING ERRCODE = '23505'; END $$`)
		if !errors.Is(postgres.Translate(err), domain.ErrConflict) {
			t.Fatalf("unique violation: %v", postgres.Translate(err))
		}
	})
}

// WithTx runs a transaction again when it lost a serialization race, and
// stops at the first other error.
func TestWithTxRetriesSerializationFailures(t *testing.T) {
	t.Parallel()
	pool := cluster.NewPool(t)
	ctx := context.Background()
	runs := 0
	err := postgres.WithTx(ctx, pool, func(tx pgx.Tx) error {
		runs++
		if runs < 3 {
			_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'race' USING ERRCODE = '40001'; END $$`)
			return err
		}
		return nil
	})
	if err != nil || runs != 3 {
		t.Fatalf("err %v after %d runs, want success after 3", err, runs)
	}
	runs = 0
	err = postgres.WithTx(ctx, pool, func(tx pgx.Tx) error {
		runs++
		_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'race' USING ERRCODE = '40P01'; END $$`)
		return err
	})
	if !postgres.Serialization(err) || runs != 5 {
		t.Fatalf("err %v after %d runs, want a deadlock after 5", err, runs)
	}
	runs = 0
	err = postgres.Retry(ctx, func() error {
		runs++
		_, err := pool.Exec(ctx, `SELECT 1/0`)
		return err
	})
	if err == nil || runs != 1 {
		t.Fatalf("err %v after %d runs, want one run", err, runs)
	}
}
