package reports

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
)

// The per-organization check: an organization's events are reflected when
// every one committed before the check is applied, whatever another
// organization's events are doing; the watermark moves past applied events
// so that pruning their records changes nothing; an event older than the
// applied-record retention counts as applied.
func TestAppliedProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := cluster.NewPool(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := func() time.Time { return now }
	p := NewAppliedProgress(pool, clock, 24*time.Hour)
	p.advanceEvery = 0 // every check may move the watermark
	orgA, orgB := domain.NewID(now), domain.NewID(now)
	appendAt := func(org domain.ID, at time.Time) eventstore.Position { return appendEventAt(t, pool, org, at) }
	apply := func(org domain.ID, pos eventstore.Position) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO projector_applied VALUES ($1, $2, $3)`, org, pos.Seq, now); err != nil {
			t.Fatal(err)
		}
	}
	reflected := func(org domain.ID) bool {
		t.Helper()
		ok, below, err := p.Reflected(ctx, org, 0)
		if err != nil || below == 0 {
			t.Fatalf("Reflected = %v, %d, %v", ok, below, err)
		}
		return ok
	}
	watermark := func(org domain.ID) int64 {
		t.Helper()
		var w int64
		err := pool.QueryRow(ctx, `SELECT coalesce((SELECT applied_below::text::bigint FROM consistency_watermarks WHERE org_id = $1), 0)`, org).Scan(&w)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}

	if !reflected(orgA) {
		t.Fatal("an organization without events is not reflected")
	}
	a1 := appendAt(orgA, now)
	// An event older than the retention, never applied. It goes first:
	// an organization's event times follow its chain (eventstore.Stamp).
	appendAt(orgB, now.Add(-48*time.Hour))
	b1 := appendAt(orgB, now) // not applied yet: B's trouble
	if reflected(orgA) {
		t.Fatal("reflected with an unapplied event")
	}
	apply(orgA, a1)
	if !reflected(orgA) {
		t.Fatal("not reflected although every event of the organization is applied")
	}
	if reflected(orgB) {
		t.Fatal("the other organization is reflected with its event unapplied")
	}
	// The watermark moves up to the oldest running transaction of the
	// cluster (other tests' included): check until it passes.
	for deadline := time.Now().Add(20 * time.Second); watermark(orgA) <= int64(a1.TxID); {
		if time.Now().After(deadline) {
			t.Fatalf("watermark %d not past the applied event's transaction %d", watermark(orgA), a1.TxID)
		}
		if !reflected(orgA) {
			t.Fatal("no longer reflected")
		}
		time.Sleep(5 * time.Millisecond) // polling the cluster's xmin: nothing to wait on
	}
	// Pruning the applied records below the watermark changes nothing.
	if _, err := pool.Exec(ctx, `DELETE FROM projector_applied WHERE org_id = $1`, orgA); err != nil {
		t.Fatal(err)
	}
	if !reflected(orgA) {
		t.Fatal("not reflected once the applied records below the watermark were pruned")
	}
	// A bound held from an earlier check ignores later writes.
	_, below, err := p.Reflected(ctx, orgA, 0)
	if err != nil {
		t.Fatal(err)
	}
	a2 := appendAt(orgA, now)
	if ok, _, err := p.Reflected(ctx, orgA, below); err != nil || !ok {
		t.Fatalf("a check held to an earlier bound waits for a later write: %v, %v", ok, err)
	}
	if reflected(orgA) {
		t.Fatal("reflected with a new unapplied event")
	}
	apply(orgA, a2)
	// An event older than the retention counts as applied (its record may
	// have been pruned; no wait can bring it).
	if reflected(orgB) {
		t.Fatal("B's recent unapplied event ignored")
	}
	apply(orgB, b1)
	if !reflected(orgB) {
		t.Fatal("an event older than the retention holds the organization back")
	}
	// The relay re-publishes from the oldest unapplied event inside the
	// retention; with none, from the current snapshot.
	a3 := appendAt(orgA, now)
	if tx, err := p.OldestUnapplied(ctx); err != nil || tx != int64(a3.TxID) {
		t.Fatalf("OldestUnapplied = %d, %v; want %d", tx, err, a3.TxID)
	}
	apply(orgA, a3)
	// With nothing unapplied it answers the current snapshot's xmin: past
	// a3, unless another test's transaction older than a3 is still open
	// (xmin is cluster-wide), so compare with the xmin seen just before.
	var xmin int64
	if err := pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin); err != nil {
		t.Fatal(err)
	}
	if tx, err := p.OldestUnapplied(ctx); err != nil || tx < xmin || tx == int64(a3.TxID) {
		t.Fatalf("OldestUnapplied with nothing unapplied = %d, %v; want the snapshot's xmin (>= %d), not a3's %d", tx, err, xmin, a3.TxID)
	}
}

// appendEventAt appends a revenue event of org stamped at, in its own
// transaction, and returns where it went.
func appendEventAt(t *testing.T, pool *pgxpool.Pool, org domain.ID, at time.Time) eventstore.Position {
	t.Helper()
	ctx := context.Background()
	var pos eventstore.Position
	err := postgres.WithTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		pos, err = eventstore.AppendTx(ctx, tx, domain.Event{ID: domain.NewID(time.Now()), Type: domain.RevenueAdded, OrgID: org,
			UserID: org, EntityType: domain.EntityRevenue, EntityID: domain.NewID(time.Now()), AggregateVersion: 1,
			Timestamp: at, Metadata: json.RawMessage(`{}`)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pos
}
