package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// WaitBlocked waits until some session waits for a lock held by the
// session with backend pid holder, so that a test can act while a
// statement is known to be queued behind that lock. It fails the test
// after 30 s.
func WaitBlocked(tb testing.TB, pool *pgxpool.Pool, holder int) {
	tb.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		var n int
		if err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`, holder).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("nothing waits for the held lock")
		}
		time.Sleep(2 * time.Millisecond) // polling pg_stat_activity: nothing to wait on
	}
}
