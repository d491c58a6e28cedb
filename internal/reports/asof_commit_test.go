package reports

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/tenancy"
)

// The point-in-time rule: an answer as of X holds exactly the changes
// committed at or before X, in commit order, and never changes later.
// These tests write through the finance service, as the API does, and read
// through DailyReportsAsOf.

// pit is one organization with an ADMIN, a MANAGER of both its
// properties, and report days d0..d0+2 in UTC.
type pit struct {
	t           *testing.T
	pool        *pgxpool.Pool
	ten         *tenancy.Service
	rep         *Service
	admin, mgr  domain.Actor
	prop, other domain.ID
	d0          domain.Date
}

func newPIT(t *testing.T) *pit {
	t.Helper()
	ctx := context.Background()
	pool := cluster.NewPool(t)
	ten, err := tenancy.New(pool, time.Now, tenancy.Config{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ten.Close)
	org, u, err := ten.Signup(ctx, tenancy.SignupInput{OrgName: "Point In Time", Email: "pit-" + domain.NewID(time.Now()).String() + "@example.test",
		Password: "correct horse battery", DisplayName: "Admin"})
	if err != nil {
		t.Fatal(err)
	}
	p := &pit{t: t, pool: pool, ten: ten, rep: NewService(pool, ten, nil, time.Now),
		admin: domain.Actor{OrgID: org.ID, UserID: u.ID, Role: domain.Admin},
		d0:    domain.DateOf(time.Now().UTC()).AddDays(-3)}
	for _, id := range []*domain.ID{&p.prop, &p.other} {
		pr, err := ten.CreateProperty(ctx, p.admin, tenancy.PropertyInput{Name: "Harbour", Type: "hotel", Timezone: "UTC", Currency: "INR"})
		if err != nil {
			t.Fatal(err)
		}
		*id = pr.ID
	}
	m, err := ten.CreateUser(ctx, p.admin, tenancy.CreateUserInput{Email: "mgr-" + domain.NewID(time.Now()).String() + "@example.test",
		Password: "correct horse battery", DisplayName: "Manager", Role: domain.Manager, PropertyIDs: []domain.ID{p.prop, p.other}})
	if err != nil {
		t.Fatal(err)
	}
	p.mgr = domain.Actor{OrgID: org.ID, UserID: m.ID, Role: domain.Manager}
	return p
}

// finance returns a finance service whose clock is off by skew, as on an
// instance whose clock is not quite right.
func (p *pit) finance(skew time.Duration) *finance.Service {
	return finance.New(p.pool, p.ten, func() time.Time { return time.Now().Add(skew) })
}

// at is noon of day d0+i.
func (p *pit) at(i int) time.Time { return p.d0.AddDays(i).Time().Add(12 * time.Hour) }

// report reads the three days of prop as of asOf, pending rows included.
func (p *pit) report(asOf time.Time) []DailyReport {
	p.t.Helper()
	r, err := p.rep.DailyReportsAsOf(context.Background(), p.admin, p.prop, p.d0, p.d0.AddDays(2), asOf, true)
	if err != nil {
		p.t.Fatalf("report as of %s: %v", asOf.Format(time.RFC3339Nano), err)
	}
	return r
}

// expected renders the three days of prop from rows as they were: the
// fold a correct answer must equal.
func (p *pit) expected(rows []finance.Transaction) []DailyReport {
	out := make([]DailyReport, 3)
	for i := range out {
		out[i].Date = p.d0.AddDays(i)
	}
	for _, t := range rows {
		if t.PropertyID != p.prop || (t.Status != domain.Approved && t.Status != domain.Pending) {
			continue
		}
		i := domain.DaysBetween(p.d0, t.BusinessDate)
		if i < 0 || i > 2 {
			p.t.Fatalf("fixture: row %s on %s, outside the report", t.ID, t.BusinessDate)
		}
		d := &out[i]
		switch {
		case t.Kind == domain.Revenue && t.PaymentMode == domain.Cash:
			d.CashReceivedCents += t.AmountCents
		case t.Kind == domain.Revenue:
			d.BankReceivedCents += t.AmountCents
		case t.PaymentMode == domain.Cash:
			d.CashExpensesCents += t.AmountCents
		default:
			d.BankExpensesCents += t.AmountCents
		}
		d.TransactionCount++
	}
	for i := 1; i < 3; i++ {
		out[i].OpeningCents = out[i-1].ClosingCents()
	}
	return out
}

// chain returns the organization's events in chain (commit) order and
// fails unless their times follow that order.
func (p *pit) chain() []eventstore.Linked {
	p.t.Helper()
	evs, err := eventstore.ChainAfter(context.Background(), p.pool, p.admin.OrgID, 0, 100000)
	if err != nil {
		p.t.Fatal(err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Timestamp.Before(evs[i-1].Timestamp) {
			p.t.Errorf("chain position %d (%s v%d) is stamped %s, before position %d's %s: event times do not follow commit order",
				evs[i].Pos, evs[i].Type, evs[i].AggregateVersion, evs[i].Timestamp.Format(time.RFC3339Nano),
				evs[i-1].Pos, evs[i-1].Timestamp.Format(time.RFC3339Nano))
		}
	}
	return evs
}

// foldAt folds every row of the organization from its events stamped at
// or before x, in version order: the rows as they were at x.
func (p *pit) foldAt(evs []eventstore.Linked, x time.Time) []finance.Transaction {
	p.t.Helper()
	byRow := map[domain.ID][]domain.Event{}
	var ids []domain.ID
	for _, ev := range evs {
		if ev.EntityType != domain.EntityRevenue && ev.EntityType != domain.EntityExpense || ev.Timestamp.After(x) {
			continue
		}
		if byRow[ev.EntityID] == nil {
			ids = append(ids, ev.EntityID)
		}
		byRow[ev.EntityID] = append(byRow[ev.EntityID], ev.Event)
	}
	var rows []finance.Transaction
	for _, id := range ids {
		row := byRow[id]
		slices.SortFunc(row, func(a, b domain.Event) int { return a.AggregateVersion - b.AggregateVersion })
		t, exists, err := finance.Fold(row)
		if err != nil {
			p.t.Fatalf("fold as of %s: %v", x.Format(time.RFC3339Nano), err)
		}
		if exists {
			rows = append(rows, t)
		}
	}
	return rows
}

// A PATCH 1000 -> 5000 waiting on the row's lock has not happened yet:
// an answer as of a moment during the wait is the same after its commit.
func TestAsOfLockDelayedEdit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPIT(t)
	fin := p.finance(0)
	row, _, err := fin.Create(ctx, p.admin, domain.Revenue, finance.CreateInput{PropertyID: p.prop, Source: "room",
		AmountCents: 1000, PaymentMode: domain.Cash, OccurredAt: p.at(1)})
	if err != nil {
		t.Fatal(err)
	}
	holder, err := p.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(context.WithoutCancel(ctx))
	var pid int
	if err := holder.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `SELECT 1 FROM transactions WHERE org_id = $1 AND id = $2 FOR UPDATE`, p.admin.OrgID, row.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		amount := int64(5000)
		_, _, err := fin.Update(ctx, p.admin, domain.Revenue, row.ID, finance.PatchInput{AmountCents: &amount})
		done <- err
	}()
	pgtest.WaitBlocked(t, p.pool, pid)
	x := time.Now().UTC().Truncate(time.Microsecond)
	during := p.report(x)
	if during[1].CashReceivedCents != 1000 {
		t.Fatalf("as of %s during the wait: cash received %d, want 1000", x.Format(time.RFC3339Nano), during[1].CashReceivedCents)
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("patch: %v", err)
	}
	if after := p.report(x); !slices.Equal(after, during) {
		t.Fatalf("as of %s: %+v during the wait, %+v after the commit: the past changed", x.Format(time.RFC3339Nano), during, after)
	}
	if now := p.report(time.Now()); now[1].CashReceivedCents != 5000 {
		t.Fatalf("as of now: cash received %d, want 5000", now[1].CashReceivedCents)
	}
}

// Eight concurrent PATCHes of one row, from instances whose clocks are
// up to 350 ms apart: the row's event times follow its versions, and the
// answer as of every moment between them is the fold of the versions up
// to it, never a figure the row did not have.
func TestAsOfConcurrentEdits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPIT(t)
	row, _, err := p.finance(0).Create(ctx, p.admin, domain.Revenue, finance.CreateInput{PropertyID: p.prop, Source: "room",
		AmountCents: 1000, PaymentMode: domain.Cash, OccurredAt: p.at(1)})
	if err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for i := range 8 {
		fin := p.finance(-time.Duration(i) * 50 * time.Millisecond)
		wg.Go(func() {
			<-start
			amount := int64(10_000*(i+1) + rand.IntN(1000))
			if _, _, err := fin.Update(ctx, p.admin, domain.Revenue, row.ID, finance.PatchInput{AmountCents: &amount}); err != nil {
				errs <- fmt.Errorf("patch %d: %w", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs := p.chain()
	if len(evs) != 9 {
		t.Fatalf("%d events, want 9", len(evs))
	}
	for i, ev := range evs {
		if ev.AggregateVersion != i+1 {
			t.Fatalf("chain position %d holds version %d", ev.Pos, ev.AggregateVersion)
		}
	}
	for _, ev := range evs {
		for _, x := range []time.Time{ev.Timestamp.Add(-time.Microsecond), ev.Timestamp} {
			if got, want := p.report(x), p.expected(p.foldAt(evs, x)); !slices.Equal(got, want) {
				t.Errorf("as of %s (version %d at %s): %+v, the fold of the versions up to then is %+v",
					x.Format(time.RFC3339Nano), ev.AggregateVersion, ev.Timestamp.Format(time.RFC3339Nano), got, want)
			}
		}
	}
}

// Writers on instances with skewed clocks create, edit, move, review and
// delete rows while readers ask for moments as they pass. Afterwards every
// answer is still the same, and equals the fold of the rows' events up to
// its moment.
func TestAsOfRandomizedConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPIT(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)

	var (
		mu   sync.Mutex
		rows []domain.ID
		kind = map[domain.ID]domain.Kind{}
	)
	pick := func(r *rand.Rand) (domain.ID, domain.Kind, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(rows) == 0 {
			return domain.ID{}, "", false
		}
		id := rows[r.IntN(len(rows))]
		return id, kind[id], true
	}
	benign := func(err error) bool {
		return err == nil || errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrConflict)
	}

	const writers, ops = 4, 20
	errs := make(chan error, writers+2)
	stop := make(chan struct{})
	type read struct {
		x   time.Time
		got []DailyReport
	}
	var (
		readsMu sync.Mutex
		reads   []read
	)
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				x := time.Now().UTC().Truncate(time.Microsecond)
				got, err := p.rep.DailyReportsAsOf(ctx, p.admin, p.prop, p.d0, p.d0.AddDays(2), x, true)
				if err != nil {
					errs <- fmt.Errorf("read as of %s: %w", x.Format(time.RFC3339Nano), err)
					return
				}
				readsMu.Lock()
				reads = append(reads, read{x, got})
				readsMu.Unlock()
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		r := rand.New(rand.NewPCG(seed, uint64(w)))
		fin := p.finance(-time.Duration(r.IntN(300)) * time.Millisecond)
		wg.Go(func() {
			for range ops {
				amount := int64(1 + r.IntN(100_000))
				mode := []domain.PaymentMode{domain.Cash, domain.Bank}[r.IntN(2)]
				id, k, ok := pick(r)
				var err error
				switch op := r.IntN(10); {
				case !ok || op < 3:
					k = []domain.Kind{domain.Revenue, domain.Expense}[r.IntN(2)]
					in := finance.CreateInput{PropertyID: p.prop, AmountCents: amount, PaymentMode: mode, OccurredAt: p.at(r.IntN(3))}
					if k == domain.Revenue {
						in.Source = "room"
					} else {
						in.Category = "supplies"
					}
					actor := p.admin
					if r.IntN(3) == 0 {
						actor = p.mgr
					}
					var t finance.Transaction
					if t, _, err = fin.Create(ctx, actor, k, in); err == nil {
						mu.Lock()
						rows, kind[t.ID] = append(rows, t.ID), k
						mu.Unlock()
					}
				case op < 6:
					actor := p.admin
					if r.IntN(3) == 0 {
						actor = p.mgr
					}
					_, _, err = fin.Update(ctx, actor, k, id, finance.PatchInput{AmountCents: &amount, PaymentMode: &mode})
				case op == 6:
					at := p.at(r.IntN(3))
					_, _, err = fin.Update(ctx, p.admin, k, id, finance.PatchInput{OccurredAt: &at})
				case op == 7:
					to := []domain.ID{p.prop, p.other}[r.IntN(2)]
					_, _, err = fin.Update(ctx, p.admin, k, id, finance.PatchInput{PropertyID: &to})
				case op == 8:
					_, _, err = fin.Review(ctx, p.admin, k, id, r.IntN(4) != 0, "")
				default:
					_, _, _, err = fin.Delete(ctx, p.admin, k, id)
				}
				if !benign(err) {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	evs := p.chain()
	if len(reads) == 0 {
		t.Fatal("no read")
	}
	t.Logf("%d events, %d reads", len(evs), len(reads))
	// Also the moments of the events themselves and just before them.
	for _, ev := range evs {
		reads = append(reads, read{x: ev.Timestamp.Add(-time.Microsecond)}, read{x: ev.Timestamp})
	}
	bad := 0
	for _, rd := range reads {
		again := p.report(rd.x)
		if rd.got != nil && !slices.Equal(again, rd.got) {
			bad++
			t.Errorf("as of %s: %+v when asked during the run, %+v afterwards: the past changed", rd.x.Format(time.RFC3339Nano), rd.got, again)
		}
		if want := p.expected(p.foldAt(evs, rd.x)); !slices.Equal(again, want) {
			bad++
			t.Errorf("as of %s: %+v, the fold of the events up to then is %+v", rd.x.Format(time.RFC3339Nano), again, want)
		}
		if bad > 5 {
			t.Fatal("stopping after 5 wrong answers")
		}
	}
}
