package reports

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/clocktest"
	"hmp/internal/domain"
)

type applyBundle struct {
	pool  *pgxpool.Pool
	clock *clocktest.Clock
	apply *applier
}

func setupApply(t *testing.T) applyBundle {
	t.Helper()
	pool := cluster.NewPool(t)
	clock := clocktest.New(epoch)
	return applyBundle{pool: pool, clock: clock, apply: &applier{pool: pool, now: clock.Now}}
}

// projection is what the balance tables hold, zero rows left out.
type projection struct {
	days    map[dayKey]Flows
	counted map[dayKey][2]int64 // counted closing, version
	months  map[dayKey]Flows
	touched map[dayKey]time.Time
}

func (p projection) equal(o projection) bool {
	return maps.Equal(p.days, o.days) && maps.Equal(p.counted, o.counted) && maps.Equal(p.months, o.months)
}

// diff lists the rows where p and want differ.
func (p projection) diff(want projection) string {
	var out []string
	add := func(what string, k dayKey, got, want any) {
		out = append(out, fmt.Sprintf("%s %s/%s/%s: got %+v, want %+v", what, k.org, k.property, k.date, got, want))
	}
	for k := range joinKeys(p.days, want.days) {
		if p.days[k] != want.days[k] {
			add("day", k, p.days[k], want.days[k])
		}
	}
	for k := range joinKeys(p.months, want.months) {
		if p.months[k] != want.months[k] {
			add("month", k, p.months[k], want.months[k])
		}
	}
	for k := range joinKeys(p.counted, want.counted) {
		if p.counted[k] != want.counted[k] {
			add("count", k, p.counted[k], want.counted[k])
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func joinKeys[V any](a, b map[dayKey]V) map[dayKey]bool {
	keys := map[dayKey]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

func readProjection(t *testing.T, pool *pgxpool.Pool) projection {
	t.Helper()
	ctx := context.Background()
	p := projection{days: map[dayKey]Flows{}, counted: map[dayKey][2]int64{}, months: map[dayKey]Flows{}, touched: map[dayKey]time.Time{}}
	for _, table := range []string{"daily_cash_balances", "monthly_cash_balances"} {
		dateCol, extra := "business_date", "counted_closing, counted_version"
		if table == "monthly_cash_balances" {
			dateCol, extra = "month", "NULL::bigint, 0"
		}
		rows, err := pool.Query(ctx, `SELECT org_id, property_id, `+dateCol+`, cash_received, bank_received, cash_expenses, bank_expenses,
			pending_cash_received, pending_bank_received, pending_cash_expenses, pending_bank_expenses,
			approved_count, pending_count, `+extra+`, updated_at FROM `+table)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for rows.Next() {
			var (
				k       dayKey
				d       time.Time
				f       Flows
				counted *int64
				version int64
				updated time.Time
			)
			if err := rows.Scan(&k.org, &k.property, &d, &f.CashReceived, &f.BankReceived, &f.CashExpenses, &f.BankExpenses,
				&f.PendingCashReceived, &f.PendingBankReceived, &f.PendingCashExpenses, &f.PendingBankExpenses,
				&f.ApprovedCount, &f.PendingCount, &counted, &version, &updated); err != nil {
				t.Fatalf("scan %s: %v", table, err)
			}
			k.date = domain.DateOf(d)
			if table == "monthly_cash_balances" {
				if !f.IsZero() {
					p.months[k] = f
				}
				continue
			}
			p.touched[k] = updated
			if !f.IsZero() {
				p.days[k] = f
			}
			if counted != nil {
				p.counted[k] = [2]int64{*counted, version}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
	}
	return p
}

// expected computes the projection of events independently of the
// applier: every distinct (org, sequence) once, the newest count wins.
func expected(t *testing.T, events []domain.Event) projection {
	t.Helper()
	p := projection{days: map[dayKey]Flows{}, counted: map[dayKey][2]int64{}, months: map[dayKey]Flows{}}
	done := map[eventRef]bool{}
	for _, ev := range events {
		if done[eventRef{ev.OrgID, ev.Sequence}] {
			continue
		}
		done[eventRef{ev.OrgID, ev.Sequence}] = true
		cs, err := changes(ev)
		if err != nil {
			t.Fatalf("fixture event %d: %v", ev.Sequence, err)
		}
		for _, c := range cs {
			f := p.days[c.key]
			f.Add(c.flows, 1)
			p.days[c.key] = f
			mk := dayKey{c.key.org, c.key.property, c.key.date.MonthStart()}
			m := p.months[mk]
			m.Add(c.flows, 1)
			p.months[mk] = m
			if c.counted != nil && int64(c.countedVersion) > p.counted[c.key][1] {
				p.counted[c.key] = [2]int64{*c.counted, int64(c.countedVersion)}
			}
		}
	}
	maps.DeleteFunc(p.days, func(_ dayKey, f Flows) bool { return f.IsZero() })
	maps.DeleteFunc(p.months, func(_ dayKey, f Flows) bool { return f.IsZero() })
	return p
}

func effectsOf(t testing.TB, events []domain.Event) [][]change {
	t.Helper()
	out := make([][]change, len(events))
	for i, ev := range events {
		cs, err := changes(ev)
		if err != nil {
			t.Fatalf("event %d: %v", ev.Sequence, err)
		}
		out[i] = cs
	}
	return out
}

func (b applyBundle) mustApply(t *testing.T, events []domain.Event) int {
	t.Helper()
	fresh, err := b.apply.apply(context.Background(), events, effectsOf(t, events))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return len(fresh)
}

// history is a small life of two organizations: adds, moves across days,
// months, properties and payment modes, approvals, a rejection, deletes,
// cash counts (the replacing one listed first) and a daily approval.
func history() []domain.Event {
	a := state(propP, domain.Approved, 5000, domain.Cash, day1)
	p := state(propQ, domain.Pending, 700, domain.Bank, day2)
	moved := a
	moved.BusinessDate, moved.PaymentMode, moved.AmountCents = day31, domain.Bank, 4200
	elsewhere := moved
	elsewhere.PropertyID = propQ
	approvedP := p
	approvedP.Status = domain.Approved
	gone := approvedP
	gone.Status = domain.Deleted
	r := state(propP, domain.Pending, 300, domain.Cash, daySep)
	rejected := r
	rejected.Status = domain.Rejected
	e := state(propP, domain.Approved, 1200, domain.Cash, day2)
	pendingE := e
	pendingE.Status, pendingE.AmountCents = domain.Pending, 1100
	approvedE := pendingE
	approvedE.Status = domain.Approved
	other := state(propP, domain.Approved, 999, domain.Cash, day1)
	return []domain.Event{
		txEvent(orgA, 1, domain.RevenueAdded, 1, a, nil),
		txEvent(orgA, 2, domain.RevenueAdded, 1, p, nil),
		txEvent(orgA, 3, domain.RevenueUpdated, 2, moved, &a),
		txEvent(orgA, 4, domain.RevenueUpdated, 3, elsewhere, &moved),
		txEvent(orgA, 5, domain.RevenueApproved, 2, approvedP, &p),
		txEvent(orgA, 6, domain.RevenueDeleted, 3, gone, &approvedP),
		txEvent(orgA, 7, domain.ExpenseAdded, 1, r, nil),
		txEvent(orgA, 8, domain.ExpenseRejected, 2, rejected, &r),
		txEvent(orgA, 9, domain.ExpenseAdded, 1, e, nil),
		txEvent(orgA, 10, domain.ExpenseUpdated, 2, pendingE, &e),
		txEvent(orgA, 11, domain.ExpenseApproved, 3, approvedE, &pendingE),
		countEvent(orgA, 13, propP, day1, 2, 800),
		countEvent(orgA, 12, propP, day1, 1, 9000),
		approvalEvent(orgA, 14, day1),
		// Another organization's sequences overlap orgA's.
		txEvent(orgB, 1, domain.RevenueAdded, 1, other, nil),
		txEvent(orgB, 2, domain.ExpenseAdded, 1, other, nil),
	}
}

func TestApplyExactlyOnce(t *testing.T) {
	t.Parallel()

	t.Run("applying the same events twice changes nothing", func(t *testing.T) {
		t.Parallel()
		b := setupApply(t)
		evs := history()
		if n := b.mustApply(t, evs); n != len(evs) {
			t.Fatalf("first apply: %d fresh, want %d", n, len(evs))
		}
		want := expected(t, evs)
		first := readProjection(t, b.pool)
		if !first.equal(want) {
			t.Fatalf("projection differs:\n%s", first.diff(want))
		}
		b.clock.Set(epoch.Add(time.Hour)) // a write would now change updated_at
		if n := b.mustApply(t, evs); n != 0 {
			t.Fatalf("second apply: %d fresh, want 0", n)
		}
		slices.Reverse(evs)
		for _, ev := range evs {
			if n := b.mustApply(t, []domain.Event{ev}); n != 0 {
				t.Fatalf("re-apply of event %d alone: %d fresh", ev.Sequence, n)
			}
		}
		again := readProjection(t, b.pool)
		if !again.equal(first) || !maps.Equal(again.touched, first.touched) {
			t.Fatalf("re-applying changed rows:\n%s", again.diff(first))
		}
	})

	t.Run("an overlapping batch applies only its new events", func(t *testing.T) {
		t.Parallel()
		b := setupApply(t)
		evs := history()
		if n := b.mustApply(t, evs[:8]); n != 8 {
			t.Fatalf("first half: %d fresh", n)
		}
		if n := b.mustApply(t, evs[4:]); n != len(evs)-8 {
			t.Fatalf("overlap: %d fresh, want %d", n, len(evs)-8)
		}
		if got, want := readProjection(t, b.pool), expected(t, evs); !got.equal(want) {
			t.Fatalf("projection differs:\n%s", got.diff(want))
		}
	})

	t.Run("a batch carrying an event twice applies it once", func(t *testing.T) {
		t.Parallel()
		b := setupApply(t)
		evs := history()
		twice := append(slices.Clone(evs), evs...)
		rand.Shuffle(len(twice), func(i, j int) { twice[i], twice[j] = twice[j], twice[i] })
		if n := b.mustApply(t, twice); n != len(evs) {
			t.Fatalf("apply: %d fresh, want %d", n, len(evs))
		}
		if got, want := readProjection(t, b.pool), expected(t, evs); !got.equal(want) {
			t.Fatalf("projection differs:\n%s", got.diff(want))
		}
	})

	t.Run("the newest cash count wins whatever the order", func(t *testing.T) {
		t.Parallel()
		b := setupApply(t)
		b.mustApply(t, []domain.Event{countEvent(orgA, 3, propP, day1, 3, 333)})
		b.mustApply(t, []domain.Event{countEvent(orgA, 1, propP, day1, 1, 111), countEvent(orgA, 2, propP, day1, 2, 222)})
		got := readProjection(t, b.pool)
		if c := got.counted[key(propP, day1)]; c != [2]int64{333, 3} {
			t.Fatalf("counted = %v, want 333 at version 3", c)
		}
		if len(got.months) != 0 || len(got.days) != 0 {
			t.Fatalf("a count moved money: days %v, months %v", got.days, got.months)
		}
	})
}

// randomEvents returns n events of valid row lives over two
// organizations, three properties and two months: each row is added, then
// changed a few times, approved or rejected, maybe deleted.
func randomEvents(r *rand.Rand, n int) []domain.Event {
	props := []domain.ID{propP, propQ, mustID("0190d7c4-0000-7000-8000-0000000000a3")}
	seq := map[domain.ID]int64{}
	counts := map[dayKey]int{} // versions of each day's cash count
	var out []domain.Event
	for len(out) < n {
		org := []domain.ID{orgA, orgB}[r.IntN(2)]
		kind := []domain.Kind{domain.Revenue, domain.Expense}[r.IntN(2)]
		ev := func(a domain.Action, v int, after domain.TransactionState, prev *domain.TransactionState) {
			seq[org]++
			out = append(out, txEvent(org, seq[org], domain.TransactionEvent(kind, a), v, after, prev))
		}
		randState := func(status domain.Status) domain.TransactionState {
			return state(props[r.IntN(3)], status, 1+r.Int64N(100_000), []domain.PaymentMode{domain.Cash, domain.Bank}[r.IntN(2)],
				domain.MustDate("2026-05-15").AddDays(r.IntN(40)))
		}
		cur := randState([]domain.Status{domain.Approved, domain.Pending}[r.IntN(2)])
		ev(domain.ActionAdded, 1, cur, nil)
		v := 1
		for range r.IntN(4) {
			prev := cur
			next := randState(prev.Status)
			v++
			switch {
			case prev.Status == domain.Pending && r.IntN(3) == 0:
				next = prev
				next.Status = domain.Approved
				ev(domain.ActionApproved, v, next, &prev)
			case prev.Status == domain.Pending && r.IntN(4) == 0:
				next = prev
				next.Status = domain.Rejected
				ev(domain.ActionRejected, v, next, &prev)
			case prev.Status == domain.Rejected:
				v--
				continue
			default:
				ev(domain.ActionUpdated, v, next, &prev)
			}
			cur = next
		}
		if cur.Status != domain.Rejected && r.IntN(3) == 0 {
			gone := cur
			gone.Status = domain.Deleted
			ev(domain.ActionDeleted, v+1, gone, &cur)
		}
		if r.IntN(5) == 0 {
			seq[org]++
			k := dayKey{org, props[r.IntN(3)], domain.MustDate("2026-06-01").AddDays(r.IntN(3))}
			counts[k]++
			out = append(out, countEvent(org, seq[org], k.property, k.date, counts[k], r.Int64N(1_000_000)))
		}
	}
	return out
}

// Several projector workers applying overlapping batches at once (a
// redelivery racing the original) still apply every event exactly once,
// and no deadlock or serialization failure surfaces.
func TestApplyConcurrentOverlappingBatches(t *testing.T) {
	t.Parallel()
	b := setupApply(t)
	r := rand.New(rand.NewPCG(7, 11))
	evs := randomEvents(r, 600)
	const workers = 8
	var fresh atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		order := slices.Clone(evs)
		wr := rand.New(rand.NewPCG(uint64(w), 99))
		wr.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		effects := effectsOf(t, order)
		wg.Go(func() {
			for i := 0; i < len(order); {
				n := min(1+wr.IntN(80), len(order)-i)
				got, err := b.apply.apply(context.Background(), order[i:i+n], effects[i:i+n])
				if err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
				fresh.Add(int64(len(got)))
				i += n
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if got := fresh.Load(); got != int64(len(evs)) {
		t.Errorf("fresh events counted by the workers = %d, want %d", got, len(evs))
	}
	var records int64
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM projector_applied`).Scan(&records); err != nil {
		t.Fatal(err)
	}
	if records != int64(len(evs)) {
		t.Errorf("applied records = %d, want %d", records, len(evs))
	}
	if got, want := readProjection(t, b.pool), expected(t, evs); !got.equal(want) {
		t.Fatalf("projection differs from the events:\n%s", got.diff(want))
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	b := setupApply(t)
	ctx := context.Background()
	evs := history()
	// Old records: applied 10 days ago; recent ones: 2 days ago.
	b.clock.Set(epoch.Add(-10 * 24 * time.Hour))
	b.mustApply(t, evs[:6])
	b.clock.Set(epoch.Add(-2 * 24 * time.Hour))
	b.mustApply(t, evs[6:])
	before := readProjection(t, b.pool)

	b.clock.Set(epoch)
	p := NewProjector(b.pool, nil, ProjectorConfig{Retention: 8 * 24 * time.Hour}, nil, b.clock.Now, nil)
	n, err := p.Prune(ctx)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if n != 6 {
		t.Fatalf("pruned %d records, want 6", n)
	}
	rows, err := b.pool.Query(ctx, `SELECT org_id, event_seq FROM projector_applied ORDER BY org_id, event_seq`)
	if err != nil {
		t.Fatal(err)
	}
	var left []eventRef
	for rows.Next() {
		var r eventRef
		if err := rows.Scan(&r.org, &r.seq); err != nil {
			t.Fatal(err)
		}
		left = append(left, r)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	var want []eventRef
	for _, ev := range evs[6:] {
		want = append(want, eventRef{ev.OrgID, ev.Sequence})
	}
	slices.SortFunc(want, func(x, y eventRef) int {
		if c := slices.Compare(x.org[:], y.org[:]); c != 0 {
			return c
		}
		return int(x.seq - y.seq)
	})
	if !slices.Equal(left, want) {
		t.Fatalf("records left = %v, want %v", left, want)
	}
	if after := readProjection(t, b.pool); !after.equal(before) {
		t.Fatalf("pruning changed the balances:\n%s", after.diff(before))
	}
	// The recent records still absorb redeliveries...
	if n := b.mustApply(t, evs[6:]); n != 0 {
		t.Fatalf("redelivery of recent events: %d fresh", n)
	}
	// ...and a new event applies as ever.
	fresh := txEvent(orgA, 100, domain.RevenueAdded, 1, state(propP, domain.Approved, 250, domain.Cash, day1), nil)
	if n := b.mustApply(t, []domain.Event{fresh}); n != 1 {
		t.Fatalf("new event after pruning: %d fresh, want 1", n)
	}
	got := readProjection(t, b.pool)
	if d, w := got.days[key(propP, day1)].CashReceived, before.days[key(propP, day1)].CashReceived+250; d != w {
		t.Fatalf("cash received on %s = %d, want %d", day1, d, w)
	}
	// Nothing is old enough any more.
	if n, err := p.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("second prune = %d, %v; want 0", n, err)
	}
}

// Pruning works through any number of records in chunks.
func TestPruneLarge(t *testing.T) {
	t.Parallel()
	b := setupApply(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `
		INSERT INTO projector_applied (org_id, event_seq, applied_at)
		SELECT $1, s, $2::timestamptz - CASE WHEN s <= 25000 THEN interval '9 days' ELSE interval '1 day' END
		FROM generate_series(1, 25100) AS s`, orgA, epoch)
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.apply.prune(ctx, epoch.Add(-8*24*time.Hour))
	if err != nil || n != 25000 {
		t.Fatalf("prune = %d, %v; want 25000", n, err)
	}
	var left, oldest int64
	if err := b.pool.QueryRow(ctx, `SELECT count(*), min(event_seq) FROM projector_applied`).Scan(&left, &oldest); err != nil {
		t.Fatal(err)
	}
	if left != 100 || oldest != 25001 {
		t.Fatalf("left %d records from %d, want 100 from 25001", left, oldest)
	}
}
