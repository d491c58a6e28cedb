package eventstore

import (
	"context"
	"testing"
	"time"

	"hmp/internal/domain"
)

// TestVerifySeesAnOrganizationWhoseEventsAreGone: every event of one
// organization deleted behind the guards' back (a superuser with triggers
// off, or a truncated partition) is a break that a full Verify names,
// although the organization no longer appears in the events table.
func TestVerifySeesAnOrganizationWhoseEventsAreGone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	kept := b
	kept.org, kept.prop = domain.NewID(time.Now()), domain.NewID(time.Now())
	kept.commit(t, kept.event(domain.NewID(time.Now()), 1))
	b.commit(t, b.event(domain.NewID(time.Now()), 1), b.event(domain.NewID(time.Now()), 1))

	v, err := Verify(ctx, b.pool, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Orgs != 2 || len(v.Breaks) != 0 {
		t.Fatalf("before the deletion: %+v, want 2 organizations and no break", v)
	}

	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	if tag, err := tx.Exec(ctx, `DELETE FROM events WHERE org_id = $1`, b.org); err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("delete the organization's events: %v (%v)", err, tag)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	v, err = Verify(ctx, b.pool, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Orgs != 2 || len(v.Breaks) != 1 || v.Breaks[0].OrgID != b.org {
		t.Fatalf("after deleting every event of %s: %+v, want that organization's break", b.org, v)
	}
	t.Logf("break: %+v", v.Breaks[0])
}
