package finance_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"hmp/internal/domain"
	"hmp/internal/domain/domaintest"
	"hmp/internal/finance"
	"hmp/internal/tenancy"
)

// TestConcurrentCreates: creates that arrive together (and may share a
// transaction, see group.go), of one organization and of two, are each
// committed exactly once before they are answered, each organization's
// events form one unbroken chain whose times follow chain order even when
// the clock steps back, and a create refused inside a shared transaction
// fails alone: the others commit.
func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	other, otherAdmin, err := f.ten.Signup(ctx, tenancy.SignupInput{OrgName: "Hill Top Inns", Email: "admin@hilltop.test", Password: "correct horse", DisplayName: "Admin"})
	if err != nil {
		t.Fatal(err)
	}
	otherActor := domain.Actor{OrgID: other.ID, UserID: otherAdmin.ID, Role: domain.Admin}
	otherProp, err := f.ten.CreateProperty(ctx, otherActor, tenancy.PropertyInput{Name: "Hill View", Type: "hotel"})
	if err != nil {
		t.Fatal(err)
	}
	f.create(t, f.admin, domain.Revenue, input(domain.Revenue, f.prop, 1)) // the volume slots exist
	// Leave room for 10^6 cents more: the maximal creates below are refused
	// whichever group it lands in, the small ones fit.
	const slotCap = domain.MaxOrgVolumeCents / 16
	if _, err := f.pool.Exec(ctx, `UPDATE org_volume_slots SET gross_cents = CASE WHEN slot = 0 THEN $2::bigint ELSE $3::bigint END
		WHERE org_id = $1`, f.org, slotCap-1_000_000, slotCap); err != nil {
		t.Fatal(err)
	}
	before := orgEvents(t, f.pool, f.org)

	const n = 48
	big := func(i int) bool { return i%8 == 7 } // refused: past the cap
	answers := make([]finance.Transaction, n)
	var mu sync.Mutex
	errs := parallel(n, func(i int) error {
		// The clock jumps back and forth: event times must still follow
		// the chain.
		f.clock.Set(baseTime.Add(time.Duration((i*7919)%1000) * time.Millisecond))
		amount := int64(100 + i)
		if big(i) {
			amount = domain.MaxAmountCents
		}
		actor, prop := f.admin, f.prop
		switch {
		case i%3 == 0:
			actor = f.mgr
		case i%4 == 1:
			actor, prop = otherActor, otherProp.ID
		}
		r, w, err := f.tryCreate(ctx, actor, domain.Revenue, input(domain.Revenue, prop, amount))
		if err != nil {
			return err
		}
		// Answered after its commit: another connection sees the row.
		reader := f.admin
		if actor.OrgID == other.ID {
			reader = otherActor
		}
		got, err := f.fin.Get(ctx, reader, domain.Revenue, r.ID)
		if err != nil {
			return err
		}
		if !same(got, r) || w.Token.TxID == 0 {
			t.Errorf("create %d answered %+v (token %v), the table holds %+v", i, r, w.Token, got)
		}
		mu.Lock()
		answers[i] = r
		mu.Unlock()
		return nil
	})
	for i, err := range errs {
		switch {
		case big(i):
			domaintest.MustFields(t, err, "amountCents")
		case err != nil:
			t.Fatalf("create %d: %v", i, err)
		}
	}

	// Exactly one event per answered create, in one chain per
	// organization, times in chain order.
	if got := orgEvents(t, f.pool, f.org) + orgEvents(t, f.pool, other.ID) - before; got != n-n/8 {
		t.Fatalf("%d events for %d answered creates", got, n-n/8)
	}
	seen := map[domain.ID]time.Time{}
	txs := map[string]int{}
	for _, org := range []domain.ID{f.org, other.ID} {
		rows, err := f.pool.Query(ctx, `SELECT chain_pos, occurred_at, entity_id, tx_id::text FROM events WHERE org_id = $1 ORDER BY chain_pos`, org)
		if err != nil {
			t.Fatal(err)
		}
		var pos int64
		var last time.Time
		for rows.Next() {
			var p int64
			var at time.Time
			var id domain.ID
			var tx string
			if err := rows.Scan(&p, &at, &id, &tx); err != nil {
				t.Fatal(err)
			}
			if p != pos+1 {
				t.Fatalf("organization %s: chain position %d after %d", org, p, pos)
			}
			if at.Before(last) {
				t.Fatalf("organization %s: event at chain position %d is stamped %s, before the previous one (%s)", org, p, at, last)
			}
			if _, dup := seen[id]; dup {
				t.Fatalf("row %s has two add events", id)
			}
			pos, last, seen[id] = p, at, at
			txs[tx]++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range answers {
		if big(i) {
			continue
		}
		at, ok := seen[r.ID]
		if !ok {
			t.Fatalf("create %d answered row %s, which has no event", i, r.ID)
		}
		if !at.Equal(r.CreatedAt) {
			t.Fatalf("create %d answered createdAt %s, its event is stamped %s", i, r.CreatedAt, at)
		}
	}
	var refused int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM transactions WHERE org_id IN ($1, $3) AND amount_cents = $2`, f.org, domain.MaxAmountCents, other.ID).Scan(&refused); err != nil {
		t.Fatal(err)
	}
	if refused != 0 {
		t.Fatalf("%d refused creates left their rows", refused)
	}
	t.Logf("%d creates committed in %d transactions", n-n/8, len(txs)-1)
}

// TestQueuedCreateLeavesWithItsClient: a create queued behind busy
// create transactions whose client gives up returns the context's error
// and writes nothing; the creates in flight still commit.
func TestQueuedCreateLeavesWithItsClient(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	f.create(t, f.admin, domain.Revenue, input(domain.Revenue, f.prop, 1)) // the chain head exists
	before := orgEvents(t, f.pool, f.org)
	// Hold the chain head: the next creates take every lane and wait.
	hold, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(context.Background())
	if _, err := hold.Exec(ctx, `SELECT 1 FROM event_chain_heads WHERE org_id = $1 FOR UPDATE`, f.org); err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan error, 8)
	for range 8 {
		go func() {
			_, _, err := f.tryCreate(ctx, f.admin, domain.Revenue, input(domain.Revenue, f.prop, 2))
			inFlight <- err
		}()
	}
	// Wait until some creates wait on the lock (their lanes are busy).
	for {
		var n int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the other creates queue
	leaving, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := f.tryCreate(leaving, f.admin, domain.Revenue, input(domain.Revenue, f.prop, 3))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // queued behind the held lanes
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a create whose client left while queued: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second): // a liveness bound, not a speed check
		t.Fatal("a create whose client left while queued is still waiting")
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		if err := <-inFlight; err != nil {
			t.Fatalf("a create in flight: %v", err)
		}
	}
	if got := orgEvents(t, f.pool, f.org) - before; got != 8 {
		t.Fatalf("%d events, want the 8 creates in flight and not the one that left", got)
	}
}
