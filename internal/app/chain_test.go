package app_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"hmp/internal/apptest"
	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/httpapi/httpapitest"
)

// TestHashChainVerify: the events of each organization form a hash chain,
// also when one organization writes concurrently; verify finds every chain
// intact, and after a row is tampered with through SQL (an amount changed,
// a hash recomputed, an event deleted, the tail cut) it names the first
// broken link.
func TestHashChainVerify(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	admin := f.org.AdminToken
	other := f.env.Signup("Other Org")
	otherProp := f.env.Property(other.AdminToken, "Hill Top", "")

	// Concurrent writes of one organization and of another.
	res := parallel(16, func(i int) (*apptest.Response, error) {
		if i%4 == 3 {
			return f.env.Send("POST", "/v1/finance/revenues", other.AdminToken, httpapitest.WithKind("revenue", txn(otherProp, int64(100+i))))
		}
		return f.env.Send("POST", "/v1/finance/expenses", admin, httpapitest.WithKind("expense", txn(f.prop, int64(100+i))))
	})
	for _, r := range res {
		if r.err != nil || r.r.Status != 201 {
			t.Fatalf("concurrent create: %v %v", r.r, r.err)
		}
	}
	rev := create(f.env, f.mgr, "revenue", txn(f.prop, 900))
	f.env.Must(200, "PATCH", "/v1/finance/revenues/"+rev.ID, f.mgr, map[string]any{"description": `<b>"quoted" & ünïcode</b>`})
	f.env.Must(200, "POST", "/v1/finance/revenues/"+rev.ID+"/approve", admin, map[string]any{"notes": "ok"})
	f.env.Must(201, "POST", "/v1/reports/cash-counts", admin, map[string]any{"propertyId": f.prop, "date": today, "countedClosingCents": 5})

	verify := func(t *testing.T, org string) eventstore.Verification {
		t.Helper()
		o := eventstore.VerifyOptions{Page: 3} // small pages: the walk crosses page ends
		if org != "" {
			o.OrgID = mustID(t, org)
		}
		v, err := eventstore.Verify(ctx, f.env.App.Pool, o)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var total int64
	if err := f.env.App.Pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if v := verify(t, ""); len(v.Breaks) != 0 || v.Orgs != 2 || v.Events != total {
		t.Fatalf("intact chains: %+v, want 2 orgs, %d events, no break", v, total)
	}

	// The event of the manager's edit: the third link of the revenue.
	var seq, pos int64
	var id domain.ID
	if err := f.env.App.Pool.QueryRow(ctx, `SELECT seq, chain_pos, id FROM events WHERE entity_id = $1 AND aggregate_version = 2`,
		rev.ID).Scan(&seq, &pos, &id); err != nil {
		t.Fatal(err)
	}
	// A forger with the rights to switch triggers off (the append-only
	// trigger stops plain statements, see below).
	exec := func(sql string, args ...any) {
		t.Helper()
		err := pgx.BeginFunc(ctx, f.env.App.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sql, args...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	expectBreak := func(t *testing.T, wantSeq, wantPos int64, what string) {
		t.Helper()
		v := verify(t, f.org.ID)
		if len(v.Breaks) != 1 {
			t.Fatalf("breaks = %+v, want one", v.Breaks)
		}
		b := v.Breaks[0]
		if b.OrgID.String() != f.org.ID || b.Seq != wantSeq || b.Pos != wantPos || !strings.Contains(b.What, what) {
			t.Fatalf("break = %s; want seq %d pos %d %q", b, wantSeq, wantPos, what)
		}
		if v := verify(t, other.ID); len(v.Breaks) != 0 {
			t.Fatalf("the other organization's chain broke too: %+v", v.Breaks)
		}
	}

	t.Run("events are append-only", func(t *testing.T) {
		for _, sql := range []string{
			`DELETE FROM events WHERE seq = $1`,
			`UPDATE events SET metadata = '{}' WHERE seq = $1`,
			`TRUNCATE events`,
		} {
			var args []any
			if strings.Contains(sql, "$1") {
				args = []any{seq}
			}
			_, err := f.env.App.Pool.Exec(ctx, sql, args...)
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("%s: err = %v, want the append-only refusal", sql, err)
			}
		}
		if v := verify(t, ""); len(v.Breaks) != 0 || v.Events != total {
			t.Fatalf("after refused rewrites: %+v", v)
		}
	})
	t.Run("a changed amount", func(t *testing.T) {
		exec(`UPDATE events SET metadata = jsonb_set(metadata, '{amountCents}', '1') WHERE seq = $1`, seq)
		expectBreak(t, seq, pos, "content differs")
	})
	t.Run("a recomputed content hash", func(t *testing.T) {
		exec(`UPDATE events SET content_hash = sha256(content_hash) WHERE seq = $1`, seq)
		expectBreak(t, seq, pos, "content differs")
	})
	t.Run("a deleted event", func(t *testing.T) {
		exec(`DELETE FROM events WHERE seq = $1`, seq)
		var nextSeq int64
		if err := f.env.App.Pool.QueryRow(ctx, `SELECT seq FROM events WHERE org_id = $1 AND chain_pos = $2`, f.org.ID, pos+1).Scan(&nextSeq); err != nil {
			t.Fatal(err)
		}
		expectBreak(t, nextSeq, pos, "is missing")
	})
	t.Run("a cut tail", func(t *testing.T) {
		// The tail from the deleted event on is cut: no gap remains, but
		// the chain head still knows the chain was longer.
		exec(`DELETE FROM events WHERE org_id = $1 AND chain_pos >= $2`, f.org.ID, pos)
		expectBreak(t, 0, pos, "last events were deleted")
	})
}

func mustID(t testing.TB, s string) domain.ID {
	t.Helper()
	id, err := domain.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

type result struct {
	r   *apptest.Response
	err error
}

// parallel runs n requests at once and returns their results by index.
func parallel(n int, req func(i int) (*apptest.Response, error)) []result {
	out := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i].r, out[i].err = req(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}
