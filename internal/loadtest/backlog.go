package loadtest

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"

	"hmp/internal/domain"
	"hmp/internal/finance"
)

// backlog generates the events the finance service and the cash counts
// would have written over the last few days of many properties, each one
// exactly as they write it (the envelope, the state after the change, the
// state before it, the affected dates, the store's sequence), and keeps
// the totals the projection must reach once it has applied them all.
//
// The mix (per mille of the events): revenues and expenses added 670
// (three in four by an ADMIN, approved; the rest by a MANAGER, pending),
// updated 140 (moving the business date, the payment mode and/or the
// amount; a MANAGER's edit sends the row back to pending), approved 80,
// rejected 20, deleted 60, cash counts 25 (a later count of a day replaces
// the earlier one), daily approvals 5. An operation that finds no row to
// act on adds one instead.
type backlog struct {
	rng   *rand.Rand
	now   func() time.Time
	days  int
	today domain.Date

	orgs  []backlogOrg
	props []backlogProp
	// live are the rows that exist and count: approved or pending.
	live   []*backlogRow
	counts map[countKey]cashCount
	grants map[grantKey]bool
	seq    int64
	// mix counts the events generated per operation.
	mix [nOps]int
}

type backlogOrg struct {
	id, admin domain.ID
	managers  []domain.ID
}

type backlogProp struct {
	org int
	id  domain.ID
}

type backlogRow struct {
	org     int
	id      domain.ID
	kind    domain.Kind
	state   domain.TransactionState
	version int
	live    int // index in backlog.live
}

type countKey struct {
	prop int
	date domain.Date
}

type cashCount struct {
	counted int64
	version int
}

type grantKey struct {
	manager domain.ID
	date    domain.Date
}

const (
	opAdd = iota
	opUpdate
	opApprove
	opReject
	opDelete
	opCashCount
	opDailyApproval
	nOps
)

var (
	opNames  = [nOps]string{"added", "updated", "approved", "rejected", "deleted", "cash counts", "daily approvals"}
	opShares = [nOps]int{670, 140, 80, 20, 60, 25, 5} // per mille
)

var categories = [...]string{"supplies", "laundry", "utilities", "salaries", "maintenance", "food and beverage"}

// newBacklog spreads properties over orgs (property i belongs to
// organization i mod orgs), each organization with one ADMIN and two
// MANAGERs; business dates fall on the last days days (today included)
// in the properties' zone.
func newBacklog(seed uint64, orgs, properties, days int, now func() time.Time) *backlog {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	g := &backlog{rng: rng, now: now, days: days, counts: map[countKey]cashCount{}, grants: map[grantKey]bool{}}
	loc, err := time.LoadLocation(domain.DefaultTimezone)
	if err != nil {
		loc = time.UTC
	}
	g.today = domain.BusinessDate(now(), loc)
	at := now()
	g.orgs = make([]backlogOrg, orgs)
	for i := range g.orgs {
		g.orgs[i] = backlogOrg{id: domain.NewID(at), admin: domain.NewID(at), managers: []domain.ID{domain.NewID(at), domain.NewID(at)}}
	}
	g.props = make([]backlogProp, properties)
	for i := range g.props {
		g.props[i] = backlogProp{org: i % orgs, id: domain.NewID(at)}
	}
	return g
}

// next returns the next event, its Sequence set.
func (g *backlog) next() (domain.Event, error) {
	g.seq++
	r := g.rng.IntN(1000)
	op := 0
	for acc := 0; op < nOps-1; op++ {
		if acc += opShares[op]; r < acc {
			break
		}
	}
	var (
		ev  domain.Event
		ok  bool
		err error
	)
	switch op {
	case opUpdate:
		ev, ok, err = g.update()
	case opApprove, opReject:
		ev, ok, err = g.review(op == opApprove)
	case opDelete:
		ev, ok, err = g.delete()
	case opCashCount:
		ev, ok, err = g.cashCount()
	case opDailyApproval:
		ev, ok, err = g.dailyApproval()
	}
	if err != nil {
		return domain.Event{}, err
	}
	if !ok {
		op = opAdd
		if ev, err = g.add(); err != nil {
			return domain.Event{}, err
		}
	}
	g.mix[op]++
	ev.Sequence = g.seq
	return ev, nil
}

func (g *backlog) clock() time.Time { return g.now().UTC().Truncate(time.Microsecond) }

func (g *backlog) date() domain.Date { return g.today.AddDays(-g.rng.IntN(g.days)) }

func (g *backlog) amount(kind domain.Kind) int64 {
	if kind == domain.Expense {
		return 100 + g.rng.Int64N(2_000_000)
	}
	return 100 + g.rng.Int64N(5_000_000)
}

func (g *backlog) mode() domain.PaymentMode {
	if g.rng.IntN(10) < 6 {
		return domain.Cash
	}
	return domain.Bank
}

func (g *backlog) manager(org int) domain.ID {
	m := g.orgs[org].managers
	return m[g.rng.IntN(len(m))]
}

func (g *backlog) add() (domain.Event, error) {
	pi := g.rng.IntN(len(g.props))
	p := g.props[pi]
	kind := domain.Revenue
	if g.rng.IntN(10) < 4 {
		kind = domain.Expense
	}
	row := &backlogRow{org: p.org, id: domain.NewID(g.now()), kind: kind, version: 1}
	row.state = domain.TransactionState{PropertyID: p.id, Status: domain.Approved, AmountCents: g.amount(kind),
		Currency: domain.DefaultCurrency, PaymentMode: g.mode(), BusinessDate: g.date()}
	if kind == domain.Revenue {
		row.state.Source = sources[g.rng.IntN(len(sources))]
	} else {
		row.state.Category = categories[g.rng.IntN(len(categories))]
	}
	if row.state.PaymentMode == domain.Bank && g.rng.IntN(2) == 0 {
		row.state.BankReference = "UTR" + strconv.FormatInt(g.rng.Int64N(1e12), 10)
	}
	actor := g.orgs[p.org].admin
	if g.rng.IntN(4) == 0 {
		row.state.Status, actor = domain.Pending, g.manager(p.org)
	}
	row.live = len(g.live)
	g.live = append(g.live, row)
	return g.transactionEvent(actor, row, domain.ActionAdded, nil, "")
}

// update edits a live row: its business date, payment mode and/or amount.
func (g *backlog) update() (domain.Event, bool, error) {
	if len(g.live) == 0 {
		return domain.Event{}, false, nil
	}
	row := g.live[g.rng.IntN(len(g.live))]
	prev := row.state
	moved := false
	if g.rng.IntN(2) == 0 && g.days > 1 {
		for row.state.BusinessDate == prev.BusinessDate {
			row.state.BusinessDate = g.date()
		}
		moved = true
	}
	if g.rng.IntN(10) < 3 {
		if row.state.PaymentMode == domain.Cash {
			row.state.PaymentMode, row.state.BankReference = domain.Bank, ""
		} else {
			row.state.PaymentMode, row.state.BankReference = domain.Cash, ""
		}
		moved = true
	}
	if !moved || g.rng.IntN(2) == 0 {
		for row.state.AmountCents == prev.AmountCents {
			row.state.AmountCents = g.amount(row.kind)
		}
	}
	actor := g.orgs[row.org].admin
	if g.rng.IntN(10) < 3 {
		// A MANAGER's edit puts the row back to approval.
		actor, row.state.Status = g.manager(row.org), domain.Pending
	}
	row.version++
	ev, err := g.transactionEvent(actor, row, domain.ActionUpdated, &prev, "")
	return ev, true, err
}

// review approves or rejects a pending row, as an ADMIN.
func (g *backlog) review(approve bool) (domain.Event, bool, error) {
	var row *backlogRow
	for range 16 {
		if len(g.live) == 0 {
			break
		}
		if r := g.live[g.rng.IntN(len(g.live))]; r.state.Status == domain.Pending {
			row = r
			break
		}
	}
	if row == nil {
		return domain.Event{}, false, nil
	}
	prev := row.state
	action, notes := domain.ActionApproved, ""
	row.state.Status = domain.Approved
	if !approve {
		action, notes, row.state.Status = domain.ActionRejected, "no receipt", domain.Rejected
		g.drop(row) // a rejected row counts no more and cannot be edited
	}
	row.version++
	ev, err := g.transactionEvent(g.orgs[row.org].admin, row, action, &prev, notes)
	return ev, true, err
}

// delete removes a live row, as an ADMIN.
func (g *backlog) delete() (domain.Event, bool, error) {
	if len(g.live) == 0 {
		return domain.Event{}, false, nil
	}
	row := g.live[g.rng.IntN(len(g.live))]
	prev := row.state
	row.state.Status = domain.Deleted
	row.version++
	g.drop(row)
	ev, err := g.transactionEvent(g.orgs[row.org].admin, row, domain.ActionDeleted, &prev, "")
	return ev, true, err
}

func (g *backlog) drop(row *backlogRow) {
	last := g.live[len(g.live)-1]
	g.live[row.live], last.live = last, row.live
	g.live = g.live[:len(g.live)-1]
	row.live = -1
}

// transactionEvent builds the event of an action on a row as the finance
// service does: prev is the state before the change (nil for an add).
func (g *backlog) transactionEvent(actor domain.ID, row *backlogRow, action domain.Action, prev *domain.TransactionState, notes string) (domain.Event, error) {
	md := domain.TransactionMetadata{TransactionState: row.state, Notes: notes, AffectedReportDates: []domain.Date{row.state.BusinessDate}}
	if prev != nil {
		md.Previous = prev
		if prev.BusinessDate != row.state.BusinessDate {
			md.AffectedReportDates = []domain.Date{prev.BusinessDate, row.state.BusinessDate}
		}
	}
	raw, err := json.Marshal(md)
	if err != nil {
		return domain.Event{}, err
	}
	now, pid := g.clock(), row.state.PropertyID
	return domain.Event{
		ID: domain.NewID(now), Version: domain.EventVersion, Type: domain.TransactionEvent(row.kind, action),
		OrgID: g.orgs[row.org].id, PropertyID: &pid, UserID: actor, EntityType: domain.EntityType(row.kind), EntityID: row.id,
		AggregateVersion: row.version, Timestamp: now, Metadata: raw,
	}, nil
}

// cashCount records (or replaces) the counted closing cash of a day.
func (g *backlog) cashCount() (domain.Event, bool, error) {
	pi := g.rng.IntN(len(g.props))
	p := g.props[pi]
	key := countKey{pi, g.date()}
	c := g.counts[key]
	md := domain.CashCountMetadata{Date: key.date, CountedClosingCents: g.rng.Int64N(100_000_000), AffectedReportDates: []domain.Date{key.date}}
	if c.version > 0 {
		md.Previous = &domain.CashCountPrevious{CountedClosingCents: c.counted}
	}
	g.counts[key] = cashCount{counted: md.CountedClosingCents, version: c.version + 1}
	raw, err := json.Marshal(md)
	if err != nil {
		return domain.Event{}, false, err
	}
	now, pid, org := g.clock(), p.id, g.orgs[p.org]
	actor := org.admin
	if g.rng.IntN(2) == 0 {
		actor = g.manager(p.org)
	}
	return domain.Event{
		ID: domain.NewID(now), Version: domain.EventVersion, Type: domain.CashBalanceUpdated, OrgID: org.id, PropertyID: &pid,
		UserID: actor, EntityType: domain.EntityCashBalance, EntityID: finance.CashCountID(org.id, p.id, key.date),
		AggregateVersion: c.version + 1, Timestamp: now, Metadata: raw,
	}, true, nil
}

// dailyApproval grants a MANAGER a daily approval, once per date.
func (g *backlog) dailyApproval() (domain.Event, bool, error) {
	oi := g.rng.IntN(len(g.orgs))
	key := grantKey{g.manager(oi), g.date()}
	if g.grants[key] {
		return domain.Event{}, false, nil
	}
	g.grants[key] = true
	raw, err := json.Marshal(domain.DailyApprovalMetadata{ManagerUserID: key.manager, Date: key.date})
	if err != nil {
		return domain.Event{}, false, err
	}
	now := g.clock()
	return domain.Event{
		ID: domain.NewID(now), Version: domain.EventVersion, Type: domain.DailyApprovalGranted, OrgID: g.orgs[oi].id,
		UserID: g.orgs[oi].admin, EntityType: domain.EntityDailyApproval, EntityID: domain.NewID(now),
		AggregateVersion: 1, Timestamp: now, Metadata: raw,
	}, true, nil
}

// flowColumns name the projection's columns that the check sums, in the
// order of flowTotals.
var flowColumns = [...]string{"cash_received", "bank_received", "cash_expenses", "bank_expenses",
	"pending_cash_received", "pending_bank_received", "pending_cash_expenses", "pending_bank_expenses",
	"approved_count", "pending_count", "counted_closing"}

// flowTotals are sums over every row of a projection table, in the order
// of flowColumns; monthly rollups carry no counted cash (its sum is 0).
type flowTotals [len(flowColumns)]int64

// expected returns what every daily row summed must show once the whole
// backlog is applied: each live row's amount in its column, the rows
// counted by status, and the newest count of every counted day.
func (g *backlog) expected() flowTotals {
	var t flowTotals
	for _, r := range g.live {
		col := 0
		if r.state.PaymentMode == domain.Bank {
			col++
		}
		if r.kind == domain.Expense {
			col += 2
		}
		if r.state.Status == domain.Pending {
			col += 4
			t[9]++
		} else {
			t[8]++
		}
		t[col] += r.state.AmountCents
	}
	for _, c := range g.counts {
		t[10] += c.counted
	}
	return t
}
