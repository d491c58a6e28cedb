package eventstore

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/postgres/pgtest"
)

// momentEvent is an event of org stamped at.
func momentEvent(org domain.ID, at time.Time) domain.Event {
	return domain.Event{ID: domain.NewID(at), Version: domain.EventVersion, Type: domain.RevenueAdded, OrgID: org,
		UserID: org, EntityType: domain.EntityRevenue, EntityID: domain.NewID(at), AggregateVersion: 1,
		Timestamp: at, Metadata: json.RawMessage(`{}`)}
}

// stampAndAppend stamps one event of org with clock and appends it.
func stampAndAppend(t *testing.T, pool *pgxpool.Pool, org domain.ID, clock func() time.Time) time.Time {
	t.Helper()
	var at time.Time
	err := postgres.WithTx(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		if at, err = Stamp(context.Background(), tx, org, clock); err != nil {
			return err
		}
		_, err = AppendTx(context.Background(), tx, momentEvent(org, at))
		return err
	})
	if err != nil {
		t.Fatalf("stamp and append: %v", err)
	}
	return at
}

// appendAt appends one event of org at a time of the caller's choosing.
func appendAt(pool *pgxpool.Pool, org domain.ID, at time.Time) error {
	return postgres.WithTx(context.Background(), pool, func(tx pgx.Tx) error {
		_, err := AppendTx(context.Background(), tx, momentEvent(org, at))
		return err
	})
}

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

// An event is never stamped before the chain's previous one, whatever the
// writer's clock says, and an append stamped otherwise is refused.
func TestStampFollowsChain(t *testing.T) {
	t.Parallel()
	pool := cluster.NewPool(t)
	base := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)
	org := domain.NewID(base)
	if got := stampAndAppend(t, pool, org, fixed(base)); !got.Equal(base) {
		t.Fatalf("first stamp %s, want the clock's %s", got, base)
	}
	// A clock behind the chain: the previous event's time.
	if got := stampAndAppend(t, pool, org, fixed(base.Add(-time.Minute))); !got.Equal(base) {
		t.Fatalf("stamp with a clock behind the chain: %s, want the last event's %s", got, base)
	}
	if got := stampAndAppend(t, pool, org, fixed(base.Add(time.Second))); !got.Equal(base.Add(time.Second)) {
		t.Fatalf("stamp with a clock ahead: %s, want %s", got, base.Add(time.Second))
	}
	err := appendAt(pool, org, base)
	if err == nil || !strings.Contains(err.Error(), "eventstore.Stamp") {
		t.Fatalf("an append stamped before the chain's last event: %v, want it refused", err)
	}
	evs, err := ChainAfter(context.Background(), pool, org, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3 (the refused append wrote nothing)", len(evs))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Timestamp.Before(evs[i-1].Timestamp) {
			t.Fatalf("position %d at %s, before position %d at %s", evs[i].Pos, evs[i].Timestamp, evs[i-1].Pos, evs[i-1].Timestamp)
		}
	}
	if v, err := Verify(context.Background(), pool, VerifyOptions{OrgID: org}); err != nil || len(v.Breaks) != 0 {
		t.Fatalf("verify: %+v, %v", v, err)
	}
}

// StampEach stamps the events of several organizations in one
// transaction by each one's rules: one organization's chain ahead of the
// clock, another's sealed moment ahead of it, a third with no head yet.
func TestStampEach(t *testing.T) {
	t.Parallel()
	pool := cluster.NewPool(t)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)
	ahead, sealed, fresh := domain.NewID(base), domain.NewID(base), domain.NewID(base)
	stampAndAppend(t, pool, ahead, fixed(base.Add(time.Minute)))
	if err := Seal(ctx, pool, sealed, base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	orgs := []domain.ID{ahead, sealed, fresh}
	want := []time.Time{base.Add(time.Minute), base.Add(time.Second + time.Microsecond), base}
	err := postgres.WithTx(ctx, pool, func(tx pgx.Tx) error {
		times, err := StampEach(ctx, tx, orgs, fixed(base))
		if err != nil {
			return err
		}
		for i, org := range orgs {
			if !times[i].Equal(want[i]) {
				t.Errorf("organization %d stamped %s, want %s", i, times[i], want[i])
			}
			// Two events of one organization may share the time.
			for range 2 {
				if _, err := AppendTx(ctx, tx, momentEvent(org, times[i])); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, org := range orgs {
		evs, err := ChainAfter(ctx, pool, org, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(evs); n == 0 || !evs[n-1].Timestamp.Equal(want[i]) {
			t.Fatalf("organization %d: chain %+v, want it to end at %s", i, evs, want[i])
		}
	}
}

// A seal at x waits for an append in flight that was stamped at or before
// x, and every event stamped afterwards is later than x, also on an
// organization that had no events when the moment was sealed.
func TestSealWaitsAndHoldsTheMoment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := cluster.NewPool(t)
	base := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)
	org := domain.NewID(base)

	inFlight, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer inFlight.Rollback(context.WithoutCancel(ctx))
	var pid int
	if err := inFlight.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	at, err := Stamp(ctx, inFlight, org, fixed(base))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AppendTx(ctx, inFlight, momentEvent(org, at)); err != nil {
		t.Fatal(err)
	}
	x := base.Add(time.Second)
	sealed := make(chan error, 1)
	go func() { sealed <- Seal(ctx, pool, org, x) }()
	pgtest.WaitBlocked(t, pool, pid)
	if err := inFlight.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-sealed; err != nil {
		t.Fatalf("seal: %v", err)
	}
	// Sealed: the event stamped before x is there, and a writer whose
	// clock is behind x is stamped after it.
	if evs, err := ChainAfter(ctx, pool, org, 0, 10); err != nil || len(evs) != 1 {
		t.Fatalf("after the seal: %d events, %v; want the one in flight", len(evs), err)
	}
	if got := stampAndAppend(t, pool, org, fixed(base)); !got.After(x) {
		t.Fatalf("stamped %s after the seal at %s, want later", got, x)
	}
	if err := appendAt(pool, org, x); err == nil {
		t.Fatal("an append stamped at the sealed moment was not refused")
	}
	// A seal never moves back.
	if err := Seal(ctx, pool, org, base); err != nil {
		t.Fatal(err)
	}
	var kept time.Time
	if err := pool.QueryRow(ctx, `SELECT sealed_at FROM event_chain_heads WHERE org_id = $1`, org).Scan(&kept); err != nil || !kept.Equal(x) {
		t.Fatalf("sealed_at %s, %v after an earlier seal; want %s", kept, err, x)
	}

	// An organization without events: the seal holds, the first append
	// chains as usual.
	fresh := domain.NewID(base)
	if err := Seal(ctx, pool, fresh, x); err != nil {
		t.Fatal(err)
	}
	if got := stampAndAppend(t, pool, fresh, fixed(base)); !got.After(x) {
		t.Fatalf("first event of a sealed organization stamped %s, want after %s", got, x)
	}
	for _, o := range []domain.ID{org, fresh} {
		if v, err := Verify(ctx, pool, VerifyOptions{OrgID: o}); err != nil || len(v.Breaks) != 0 || v.Events != 2 && o == org {
			t.Fatalf("verify %s: %+v, %v", o, v, err)
		}
	}
}
