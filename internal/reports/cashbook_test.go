package reports

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
)

// ApplyDeltas adds to the rows it names (creating missing ones), leaves
// every other row alone, and changes the counted closing only as Delta
// says: a newer or equal version sets it, an older one does not, a
// negative version drops exactly that version.
func TestApplyDeltas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := cluster.NewPool(t)
	count := func(v int64) *int64 { return &v }
	apply := func(deltas ...Delta) int {
		t.Helper()
		n, err := ApplyDeltas(ctx, pool, epoch, deltas)
		if err != nil {
			t.Fatalf("ApplyDeltas: %v", err)
		}
		return n
	}
	cash := func(in, out int64) Flows { return Flows{CashReceived: in, CashExpenses: out, ApprovedCount: 1} }

	if n := apply(
		Delta{OrgID: orgA, PropertyID: propP, Date: day1, Flows: cash(500, 0), Counted: count(900), CountedVersion: 2},
		Delta{OrgID: orgA, PropertyID: propP, Date: day2, Month: true, Flows: cash(500, 0)}, // day2: its month's rollup
		Delta{OrgID: orgB, PropertyID: propQ, Date: day31, Flows: cash(0, 70)},
	); n != 3 {
		t.Fatalf("rows written = %d, want 3", n)
	}
	if n := apply(
		Delta{OrgID: orgA, PropertyID: propP, Date: day1, Flows: cash(-200, 30), Counted: count(1), CountedVersion: 1},
		Delta{OrgID: orgA, PropertyID: propP, Date: day1, Month: true, Flows: cash(-200, 30)},
	); n != 2 {
		t.Fatalf("rows written = %d, want 2", n)
	}
	got := readProjection(t, pool)
	want := projection{
		days: map[dayKey]Flows{
			{orgA, propP, day1}:  {CashReceived: 300, CashExpenses: 30, ApprovedCount: 2},
			{orgB, propQ, day31}: cash(0, 70),
		},
		counted: map[dayKey][2]int64{{orgA, propP, day1}: {900, 2}}, // version 1 is older: kept 2
		months:  map[dayKey]Flows{{orgA, propP, day1}: {CashReceived: 300, CashExpenses: 30, ApprovedCount: 2}},
	}
	if !got.equal(want) {
		t.Fatalf("after two batches:\n%s", got.diff(want))
	}

	// Dropping another version than the row's keeps the count; dropping
	// its own clears it; an equal version replaces it.
	apply(Delta{OrgID: orgA, PropertyID: propP, Date: day1, CountedVersion: -1})
	if c := readProjection(t, pool).counted[dayKey{orgA, propP, day1}]; c != [2]int64{900, 2} {
		t.Fatalf("a drop of version 1 changed the count of version 2: %v", c)
	}
	apply(Delta{OrgID: orgA, PropertyID: propP, Date: day1, Counted: count(950), CountedVersion: 2})
	if c := readProjection(t, pool).counted[dayKey{orgA, propP, day1}]; c != [2]int64{950, 2} {
		t.Fatalf("an equal version did not replace the count: %v", c)
	}
	apply(Delta{OrgID: orgA, PropertyID: propP, Date: day1, CountedVersion: -2})
	if c, ok := readProjection(t, pool).counted[dayKey{orgA, propP, day1}]; ok {
		t.Fatalf("a drop of the row's own version kept %v", c)
	}

	t.Run("a row named twice is refused and nothing is written", func(t *testing.T) {
		before := readProjection(t, pool)
		_, err := ApplyDeltas(ctx, pool, epoch, []Delta{
			{OrgID: orgA, PropertyID: propQ, Date: day1, Flows: cash(1, 0)},
			{OrgID: orgA, PropertyID: propP, Date: day1, Month: true, Flows: cash(1, 0)},
			{OrgID: orgA, PropertyID: propP, Date: day2, Month: true, Flows: cash(1, 0)}, // the same month
		})
		if err == nil || !strings.Contains(err.Error(), "named twice") {
			t.Fatalf("err = %v, want a row named twice", err)
		}
		if after := readProjection(t, pool); !after.equal(before) {
			t.Fatalf("a refused batch wrote:\n%s", after.diff(before))
		}
	})
	t.Run("a figure past int64 fails the whole batch", func(t *testing.T) {
		before := readProjection(t, pool)
		_, err := ApplyDeltas(ctx, pool, epoch, []Delta{
			{OrgID: orgA, PropertyID: propQ, Date: day2, Flows: cash(1, 0)},
			{OrgID: orgB, PropertyID: propQ, Date: day31, Flows: Flows{CashExpenses: 1<<63 - 1}},
		})
		if err == nil {
			t.Fatal("an overflowing delta was applied")
		}
		if after := readProjection(t, pool); !after.equal(before) {
			t.Fatalf("a failed batch wrote:\n%s", after.diff(before))
		}
	})
}

// Unapplied holds an event back while it is inside the retention, above
// its organization's watermark and without an applied record, and in both
// forms (one organization, every organization).
func TestUnapplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := cluster.NewPool(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	floor := now.Add(-24 * time.Hour)
	org, other := domain.NewID(now), domain.NewID(now)
	appendAt := func(org domain.ID, at time.Time) eventstore.Position { return appendEventAt(t, pool, org, at) }
	seqs := func(sql string, args ...any) []int64 {
		t.Helper()
		rows, err := pool.Query(ctx, sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	ofOrg := func() []int64 {
		return seqs(`SELECT e.seq FROM events e WHERE e.org_id = $1 AND `+Unapplied("$1", "$2")+` ORDER BY e.seq`, org, floor)
	}
	ofAll := func() []int64 {
		return seqs(`SELECT e.seq FROM events e WHERE `+Unapplied("e.org_id", "$1")+` ORDER BY e.seq`, floor)
	}

	old := appendAt(org, now.Add(-48*time.Hour)) // older than the retention: counts as applied
	applied := appendAt(org, now)
	pending := appendAt(org, now)
	late := appendAt(org, now)
	theirs := appendAt(other, now)
	if _, err := pool.Exec(ctx, `INSERT INTO projector_applied VALUES ($1, $2, $3)`, org, applied.Seq, now); err != nil {
		t.Fatal(err)
	}
	if got, want := ofOrg(), []int64{pending.Seq, late.Seq}; !slices.Equal(got, want) {
		t.Fatalf("unapplied of one organization = %v, want %v (old %d, applied %d)", got, want, old.Seq, applied.Seq)
	}
	if got, want := ofAll(), []int64{pending.Seq, late.Seq, theirs.Seq}; !slices.Equal(got, want) {
		t.Fatalf("unapplied of every organization = %v, want %v", got, want)
	}
	// A watermark past pending's transaction says it is applied (its
	// record may be pruned); late, above it, is still unapplied; the other
	// organization's watermark is its own.
	if _, err := pool.Exec(ctx, `INSERT INTO consistency_watermarks (org_id, applied_below, updated_at)
		VALUES ($1, $2::bigint::text::xid8, $3)`, org, int64(pending.TxID)+1, now); err != nil {
		t.Fatal(err)
	}
	if got, want := ofOrg(), []int64{late.Seq}; !slices.Equal(got, want) {
		t.Fatalf("unapplied under a watermark = %v, want %v", got, want)
	}
	if got, want := ofAll(), []int64{late.Seq, theirs.Seq}; !slices.Equal(got, want) {
		t.Fatalf("unapplied of every organization under a watermark = %v, want %v", got, want)
	}
}

// StageShadow and SwapShadow make the live rows of an organization equal
// to the fold of its events: a drifted row is set back, a row the fold
// lacks is deleted, a missing one is inserted; another organization's rows
// are left alone; a second swap changes nothing.
func TestSwapShadow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupApply(t)
	events := history()
	b.mustApply(t, events)
	var fold Fold
	for _, ev := range events {
		if ev.OrgID != orgA {
			continue
		}
		if err := fold.AddEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	want := expected(t, events)
	// Drift: a changed figure, a lost row, a row no event made, and a
	// drifted row of the other organization, which stays.
	for _, d := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE daily_cash_balances SET cash_received = cash_received + 1 WHERE org_id = $1 AND business_date = $2`, []any{orgA, day1.Time()}},
		{`DELETE FROM monthly_cash_balances WHERE org_id = $1 AND month = $2`, []any{orgA, day1.Time()}},
		{`INSERT INTO daily_cash_balances (org_id, property_id, business_date, cash_received, updated_at)
			VALUES ($1, $2, '2026-12-24', 5, now())`, []any{orgA, propQ}},
		{`UPDATE daily_cash_balances SET bank_expenses = bank_expenses + 7 WHERE org_id = $1 AND business_date = $2`, []any{orgB, day1.Time()}},
	} {
		if tag, err := b.pool.Exec(ctx, d.sql, d.args...); err != nil || tag.RowsAffected() == 0 {
			t.Fatalf("%s: %v, %d rows", d.sql, err, tag.RowsAffected())
		}
	}
	drifted := readProjection(t, b.pool)
	if drifted.equal(want) {
		t.Fatal("the drift changed nothing")
	}
	swap := func() int {
		t.Helper()
		var changed int
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			if err := StageShadow(ctx, tx, &fold, domain.ID{}, epoch, false); err != nil {
				return err
			}
			if err := LockCashBook(ctx, tx); err != nil {
				return err
			}
			var err error
			changed, err = SwapShadow(ctx, tx, orgA, domain.ID{})
			return err
		})
		if err != nil {
			t.Fatalf("swap: %v", err)
		}
		return changed
	}
	if n := swap(); n == 0 {
		t.Fatal("the swap changed no row")
	}
	got := readProjection(t, b.pool)
	// orgB keeps its drift; orgA is the fold again.
	for k, f := range drifted.days {
		if k.org == orgB {
			if got.days[k] != f {
				t.Fatalf("the swap of orgA changed orgB's row %v: %v, was %v", k, got.days[k], f)
			}
			want.days[k] = f
		}
	}
	if !got.equal(want) {
		t.Fatalf("after the swap:\n%s", got.diff(want))
	}
	if n := swap(); n != 0 {
		t.Fatalf("a second swap changed %d rows", n)
	}
}
