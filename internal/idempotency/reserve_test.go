package idempotency_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/idempotency"
	"hmp/internal/postgres"
)

type reserveFixture struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	store *idempotency.Store
	org   domain.ID
	user  domain.ID
}

func reserveSetup(t *testing.T, cfg idempotency.Config) *reserveFixture {
	t.Helper()
	pool := cluster.NewPool(t)
	now := time.Now()
	return &reserveFixture{ctx: context.Background(), pool: pool, store: idempotency.NewStoreWith(pool, time.Now, cfg),
		org: domain.NewID(now), user: domain.NewID(now)}
}

func (f *reserveFixture) key(v string) idempotency.Key {
	return idempotency.Key{OrgID: f.org, UserID: f.user, Route: "POST /v1/properties", Value: v}
}

// write commits a marker row (another key) under res's hook, as a service
// write would, and returns its error.
func (f *reserveFixture) write(res *idempotency.Reservation, marker string) error {
	ctx := postgres.WithBeforeCommit(f.ctx, res.Mark)
	return postgres.WithTx(ctx, f.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (org_id, user_id, route, key, request_hash, created_at)
			VALUES ($1, $2, 'marker', $3, '\x00', now())`, f.org, f.user, marker)
		return err
	})
}

func (f *reserveFixture) markers(t *testing.T, marker string) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM idempotency_keys WHERE org_id = $1 AND route = 'marker' AND key = $2`,
		f.org, marker).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReserve: the life of a key: held, marked in the write's commit,
// answered; waited for by a concurrent request; refused for another body;
// released when the request failed; taken over from a holder that is gone
// before it committed (whose commit is then refused); and, committed by a
// holder that died before it answered, neither redone nor replayed.
func TestReserve(t *testing.T) {
	t.Parallel()
	h1, h2 := idempotency.Hash([]byte(`{"a":1}`)), idempotency.Hash([]byte(`{"a":2}`))

	t.Run("a concurrent request waits for the answer", func(t *testing.T) {
		t.Parallel()
		f := reserveSetup(t, idempotency.Config{})
		res, ans, err := f.store.Reserve(f.ctx, f.key("k"), h1)
		if err != nil || ans != nil || res == nil {
			t.Fatalf("first Reserve: %v %v %v", res, ans, err)
		}
		type outcome struct {
			res *idempotency.Reservation
			ans *idempotency.Answer
			err error
		}
		waiting := make(chan outcome, 1)
		go func() {
			r, a, err := f.store.Reserve(f.ctx, f.key("k"), h1)
			waiting <- outcome{r, a, err}
		}()
		if err := f.write(res, "m"); err != nil {
			t.Fatal(err)
		}
		want := idempotency.Answer{Status: 201, Header: http.Header{"Location": {"/x/1"}}, Body: []byte(`{"id":1}`)}
		if err := res.Finish(f.ctx, want, true); err != nil {
			t.Fatal(err)
		}
		got := <-waiting
		if got.err != nil || got.res != nil || got.ans == nil {
			t.Fatalf("the waiting request got %+v, want the answer", got)
		}
		if got.ans.Status != 201 || string(got.ans.Body) != `{"id":1}` || got.ans.Header.Get("Location") != "/x/1" {
			t.Fatalf("replayed %d %v %s", got.ans.Status, got.ans.Header, got.ans.Body)
		}
		if _, _, err := f.store.Reserve(f.ctx, f.key("k"), h2); !errors.Is(err, idempotency.ErrMismatch) {
			t.Fatalf("another body: %v, want ErrMismatch", err)
		}
		if n := f.markers(t, "m"); n != 1 {
			t.Fatalf("%d writes, want 1", n)
		}
	})

	t.Run("a failed request releases its key", func(t *testing.T) {
		t.Parallel()
		f := reserveSetup(t, idempotency.Config{})
		res, _, err := f.store.Reserve(f.ctx, f.key("k"), h1)
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Finish(f.ctx, idempotency.Answer{Status: 422}, false); err != nil {
			t.Fatal(err)
		}
		again, ans, err := f.store.Reserve(f.ctx, f.key("k"), h2)
		if err != nil || again == nil || ans != nil {
			t.Fatalf("after a release: %v %v %v, want the key held again", again, ans, err)
		}
		_ = again.Finish(f.ctx, idempotency.Answer{Status: 500}, false)
	})

	t.Run("a request that committed and then failed is remembered", func(t *testing.T) {
		t.Parallel()
		f := reserveSetup(t, idempotency.Config{})
		res, _, err := f.store.Reserve(f.ctx, f.key("k"), h1)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.write(res, "m"); err != nil {
			t.Fatal(err)
		}
		if err := res.Finish(f.ctx, idempotency.Answer{Status: 500, Body: []byte("x")}, false); err != nil {
			t.Fatal(err)
		}
		if _, ans, err := f.store.Reserve(f.ctx, f.key("k"), h1); err != nil || ans == nil || ans.Status != 500 {
			t.Fatalf("got %v %v, want the recorded answer (the write is not redone)", ans, err)
		}
	})

	t.Run("a wait is bounded", func(t *testing.T) {
		t.Parallel()
		f := reserveSetup(t, idempotency.Config{Wait: 50 * time.Millisecond})
		res, _, err := f.store.Reserve(f.ctx, f.key("k"), h1)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Finish(f.ctx, idempotency.Answer{}, false)
		if _, _, err := f.store.Reserve(f.ctx, f.key("k"), h1); !errors.Is(err, idempotency.ErrInProgress) {
			t.Fatalf("while held: %v, want ErrInProgress", err)
		}
	})

	t.Run("a holder gone before its commit is taken over", func(t *testing.T) {
		t.Parallel()
		f := reserveSetup(t, idempotency.Config{Lease: time.Minute})
		old, _, err := f.store.Reserve(f.ctx, f.key("k"), h1)
		if err != nil {
			t.Fatal(err)
		}
		// Its lease ran out (its instance stopped renewing it).
		if _, err := f.pool.Exec(f.ctx, `UPDATE idempotency_keys SET reserved_at = now() - interval '1 hour' WHERE org_id = $1`, f.org); err != nil {
			t.Fatal(err)
		}
		res, ans, err := f.store.Reserve(f.ctx, f.key("k"), h1)
		if err != nil || res == nil || ans != nil {
			t.Fatalf("retry: %v %v %v, want the key taken over", res, ans, err)
		}
		if err := f.write(old, "old"); err == nil {
			t.Fatal("the old holder committed after the takeover")
		}
		if err := f.write(res, "new"); err != nil {
			t.Fatal(err)
		}
		if f.markers(t, "old") != 0 || f.markers(t, "new") != 1 {
			t.Fatalf("writes: old %d new %d, want 0 and 1", f.markers(t, "old"), f.markers(t, "new"))
		}
		_ = old.Finish(f.ctx, idempotency.Answer{}, false)
		if err := res.Finish(f.ctx, idempotency.Answer{Status: 201}, true); err != nil {
			t.Fatal(err)
		}
		if _, ans, err := f.store.Reserve(f.ctx, f.key("k"), h1); err != nil || ans == nil || ans.Status != 201 {
			t.Fatalf("after both finished: %v %v, want the new holder's answer", ans, err)
		}
	})

	t.Run("committed without an answer is neither redone nor replayed", func(t *testing.T) {
		t.Parallel()
		f := reserveSetup(t, idempotency.Config{Lease: time.Minute})
		res, _, err := f.store.Reserve(f.ctx, f.key("k"), h1)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.write(res, "m"); err != nil {
			t.Fatal(err)
		}
		// Its instance died here: no Finish, no renewal.
		if _, err := f.pool.Exec(f.ctx, `UPDATE idempotency_keys SET reserved_at = now() - interval '1 hour', owner = $2 WHERE org_id = $1 AND route <> 'marker'`,
			f.org, domain.NewID(time.Now())); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.store.Reserve(f.ctx, f.key("k"), h1); !errors.Is(err, idempotency.ErrOutcomeUnknown) || !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("retry: %v, want ErrOutcomeUnknown (503)", err)
		}
		_ = res.Finish(f.ctx, idempotency.Answer{}, false)
	})
}
