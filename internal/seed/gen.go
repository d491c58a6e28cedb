package seed

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/reports"
	"hmp/internal/tenancy"
)

// zones are the time zones seeded properties are spread over, with the
// currency each uses.
var zones = []struct{ tz, currency string }{
	{"Asia/Kolkata", "INR"}, {"Asia/Kolkata", "INR"}, {"Europe/London", "GBP"},
	{"America/New_York", "USD"}, {"Asia/Tokyo", "JPY"}, {"Australia/Sydney", "AUD"}, {"UTC", "EUR"},
}

var (
	propertyTypes = []string{"hotel", "hostel", "resort", "apartment"}
	sources       = []string{"room", "room", "room", "addon", "other"}
	categories    = []string{"supplies", "utilities", "salaries", "maintenance", "food", "laundry"}
)

// batch is the rows of a run of organizations, one slice per table, in
// the order they are copied (referenced tables first).
type batch struct {
	orgs, users, logins, properties, managerProps [][]any
	transactions, events, approvals, counts       [][]any
	daily, monthly, heads                         [][]any
	fold                                          reports.Fold
	firstOrg, n                                   int
	accounts                                      []Account
}

func (b *batch) rows() int64 {
	return int64(len(b.orgs) + len(b.users) + len(b.logins) + len(b.properties) + len(b.managerProps) +
		len(b.transactions) + len(b.events) + len(b.approvals) + len(b.counts) + len(b.daily) + len(b.monthly) + len(b.heads))
}

// generator builds the history of organizations; it is deterministic in
// (seed, organization index, now).
type generator struct {
	cfg   Config
	now   time.Time
	hash  []byte
	locs  []*time.Location
	keep  int // accounts to keep (the first organizations')
	stamp time.Time
}

func newGenerator(cfg Config, now time.Time, hash []byte) (*generator, error) {
	g := &generator{cfg: cfg, now: now.UTC().Truncate(time.Second), hash: hash, keep: cfg.KeepAccounts}
	for _, z := range zones {
		loc, err := tenancy.LoadZone(z.tz)
		if err != nil {
			return nil, fmt.Errorf("seed zone: %w", err)
		}
		g.locs = append(g.locs, loc)
	}
	g.stamp = g.now
	return g, nil
}

// id returns a version 7 UUID for time t drawn from rng.
func id(rng *rand.Rand, t time.Time) domain.ID {
	var v domain.ID
	binary.BigEndian.PutUint64(v[8:], rng.Uint64())
	binary.BigEndian.PutUint16(v[6:], uint16(rng.Uint32()))
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(v[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(v[2:6], uint32(ms))
	v[6] = v[6]&0x0f | 0x70
	v[8] = v[8]&0x3f | 0x80
	return v
}

// AdminEmail and ManagerEmail are the login emails of organization i
// (from 0) of a seeded data set.
func AdminEmail(i int) string   { return fmt.Sprintf("admin-%d@seed.hmp.test", i) }
func ManagerEmail(i int) string { return fmt.Sprintf("manager-%d@seed.hmp.test", i) }

// gen appends organization i to b: its users and properties, each
// property's days of rows and cash counts, the manager's daily approvals,
// and the chained events. The steps draw from one random source in a
// fixed order, so a seed gives the same data.
func (g *generator) gen(b *batch, i int) error {
	o := g.newOrg(b, i)
	for _, prop := range o.properties(i) {
		if err := o.propertyHistory(prop); err != nil {
			return err
		}
	}
	if err := o.dailyApprovals(); err != nil {
		return err
	}
	if err := o.chain(); err != nil {
		return err
	}
	b.n++
	return nil
}

// orgGen is the generation of one organization.
type orgGen struct {
	g                        *generator
	b                        *batch
	rng                      *rand.Rand
	now                      time.Time
	days                     int
	orgID                    domain.ID
	created                  time.Time
	admin, manager           tenancy.User
	adminActor, managerActor domain.Actor
	events                   []domain.Event
}

// newOrg appends organization i's row, its ADMIN and MANAGER and their
// logins.
func (g *generator) newOrg(b *batch, i int) *orgGen {
	o := &orgGen{g: g, b: b, rng: rand.New(rand.NewPCG(g.cfg.Seed, uint64(i))), now: g.now, days: g.cfg.Days}
	// Organizations were created one millisecond apart in index order, so
	// their (time ordered) ids and every key that starts with one grow
	// with the index: each chunk lands in its own key range.
	o.created = o.now.AddDate(0, 0, -o.days-2).Add(-2 * time.Hour).Add(time.Duration(i) * time.Millisecond)
	created, rng := o.created, o.rng
	o.orgID = id(rng, created)
	b.orgs = append(b.orgs, tenancy.OrgRow(o.orgID, fmt.Sprintf("Seed Org %d", i), created))
	o.admin = tenancy.User{OrgID: o.orgID, ID: id(rng, created), Email: AdminEmail(i), DisplayName: fmt.Sprintf("Admin %d", i), Role: domain.Admin, CreatedAt: created}
	o.manager = tenancy.User{OrgID: o.orgID, ID: id(rng, created), Email: ManagerEmail(i), DisplayName: fmt.Sprintf("Manager %d", i), Role: domain.Manager, CreatedAt: created}
	b.users = append(b.users, tenancy.UserRow(o.admin), tenancy.UserRow(o.manager))
	b.logins = append(b.logins, tenancy.LoginRow(o.admin, g.hash), tenancy.LoginRow(o.manager, g.hash))
	o.adminActor = domain.Actor{OrgID: o.orgID, UserID: o.admin.ID, Role: domain.Admin}
	o.managerActor = domain.Actor{OrgID: o.orgID, UserID: o.manager.ID, Role: domain.Manager}
	return o
}

// properties appends one to three properties in random zones, the
// manager's access to each, and the account of organization i when it
// is one of the first.
func (o *orgGen) properties(i int) []tenancy.Property {
	rng := o.rng
	props := make([]tenancy.Property, 1+rng.IntN(3))
	acct := Account{Index: i, OrgID: o.orgID.String(), AdminEmail: o.admin.Email, ManagerEmail: o.manager.Email}
	for p := range props {
		z := rng.IntN(len(zones))
		props[p] = tenancy.Property{OrgID: o.orgID, ID: id(rng, o.created), Name: fmt.Sprintf("Property %d-%d", i, p),
			Type: propertyTypes[rng.IntN(len(propertyTypes))], Timezone: zones[z].tz, Currency: zones[z].currency,
			CreatedAt: o.created, Location: o.g.locs[z]}
		o.b.properties = append(o.b.properties, tenancy.PropertyRow(props[p]))
		o.b.managerProps = append(o.b.managerProps, tenancy.ManagerPropertyRow(o.orgID, o.manager.ID, props[p].ID))
		acct.PropertyIDs = append(acct.PropertyIDs, props[p].ID.String())
	}
	if i < o.g.keep {
		o.b.accounts = append(o.b.accounts, acct)
	}
	return props
}

func (o *orgGen) emit(ev domain.Event, err error) error {
	if err != nil {
		return err
	}
	o.events = append(o.events, ev)
	return nil
}

// clamp keeps t from passing the generation's now.
func (o *orgGen) clamp(t time.Time) time.Time {
	if t.After(o.now) {
		return o.now
	}
	return t
}

// propertyHistory generates the property's last Days days (in its zone):
// each day's rows, then perhaps a cash count of the running closing.
func (o *orgGen) propertyHistory(prop tenancy.Property) error {
	today := domain.BusinessDate(o.now, prop.Location)
	closing := int64(0)
	for d := today.AddDays(-o.days + 1); !d.After(today); d = d.AddDays(1) {
		dayStart := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, prop.Location)
		span := min(o.now.Sub(dayStart), 24*time.Hour)
		if span < time.Minute {
			continue
		}
		n := int(o.g.cfg.Density)
		if o.rng.Float64() < o.g.cfg.Density-float64(n) {
			n++
		}
		for range n {
			cash, err := o.transaction(prop, dayStart, span)
			if err != nil {
				return err
			}
			closing += cash
		}
		if err := o.cashCount(prop, d, dayStart, closing); err != nil {
			return err
		}
	}
	return nil
}

// transaction generates one row of the day through its life (added,
// perhaps reviewed, corrected or deleted) and returns what it adds to the
// cash book's closing.
func (o *orgGen) transaction(prop tenancy.Property, dayStart time.Time, span time.Duration) (int64, error) {
	t, actor, at := o.newTransaction(prop, dayStart, span)
	if err := o.g.step(o.b, o.rng, actor, domain.ActionAdded, &t, nil, at, "", o.emit); err != nil {
		return 0, err
	}
	at, err := o.review(&t, at)
	if err != nil {
		return 0, err
	}
	if at, err = o.correct(&t, at); err != nil {
		return 0, err
	}
	if deleted, err := o.delete(&t, at); err != nil || deleted {
		return 0, err
	}
	o.b.transactions = append(o.b.transactions, finance.BulkRow(&t))
	if t.Status != domain.Approved || t.PaymentMode != domain.Cash {
		return 0, nil
	}
	if t.Kind == domain.Revenue {
		return t.AmountCents, nil
	}
	return -t.AmountCents, nil
}

// newTransaction draws a revenue or expense of the day: by the ADMIN
// (approved) or the MANAGER (pending), cash or bank.
func (o *orgGen) newTransaction(prop tenancy.Property, dayStart time.Time, span time.Duration) (finance.Transaction, domain.Actor, time.Time) {
	rng := o.rng
	occurred := dayStart.Add(time.Duration(rng.Int64N(int64(span/time.Second))) * time.Second).UTC()
	t := finance.Transaction{OrgID: o.orgID, Kind: domain.Revenue, PropertyID: prop.ID, Currency: prop.Currency,
		OccurredAt: occurred, BusinessDate: domain.BusinessDate(occurred, prop.Location), Version: 1}
	if rng.IntN(10) < 4 {
		t.Kind = domain.Expense
		t.Category = categories[rng.IntN(len(categories))]
		t.AmountCents = 500 + rng.Int64N(200_000)
	} else {
		t.Source = sources[rng.IntN(len(sources))]
		t.AmountCents = 1000 + rng.Int64N(500_000)
	}
	t.PaymentMode = domain.Cash
	if rng.IntN(100) < 45 {
		t.PaymentMode = domain.Bank
		t.BankReference = fmt.Sprintf("BR%08d", rng.IntN(100_000_000))
	}
	if rng.IntN(4) == 0 {
		t.Description = "seeded entry"
	}
	at := o.clamp(occurred.Add(time.Duration(1+rng.IntN(120)) * time.Minute))
	t.ID = id(rng, at)
	t.CreatedAt, t.UpdatedAt = at, at
	actor := o.adminActor
	if rng.IntN(10) < 4 {
		actor = o.managerActor
		t.Status = domain.Pending
	} else {
		t.Status = domain.Approved
		// A copy: at moves on to later steps of the row.
		reviewed := at
		t.ReviewedBy, t.ReviewedAt = &o.admin.ID, &reviewed
	}
	t.CreatedBy, t.UpdatedBy = actor.UserID, actor.UserID
	return t, actor, at
}

// review has the ADMIN review a manager's pending row later, mostly
// approving it; it returns the time the row's story is at.
func (o *orgGen) review(t *finance.Transaction, at time.Time) (time.Time, error) {
	if t.Status != domain.Pending {
		return at, nil
	}
	r := o.rng.IntN(100)
	at = at.Add(time.Duration(10+o.rng.IntN(24*60)) * time.Minute)
	if r >= 85 || at.After(o.now) {
		return at, nil
	}
	prev := *t
	t.Status, t.Version, t.UpdatedBy, t.UpdatedAt = domain.Approved, t.Version+1, o.admin.ID, at
	reviewed := at
	t.ReviewedBy, t.ReviewedAt = &o.admin.ID, &reviewed
	action, notes := domain.ActionApproved, ""
	if r < 5 {
		t.Status, action, notes = domain.Rejected, domain.ActionRejected, "not ours"
		t.ReviewNotes = notes
	}
	return at, o.g.step(o.b, o.rng, o.adminActor, action, t, &prev, at, notes, o.emit)
}

// correct has the ADMIN correct some rows (same day, new amount).
func (o *orgGen) correct(t *finance.Transaction, at time.Time) (time.Time, error) {
	if t.Status == domain.Rejected || o.rng.IntN(100) >= 6 {
		return at, nil
	}
	at = at.Add(time.Duration(1+o.rng.IntN(600)) * time.Minute)
	if at.After(o.now) {
		return at, nil
	}
	prev := *t
	t.AmountCents = max(1, t.AmountCents+o.rng.Int64N(20_000)-10_000)
	t.Description = "corrected"
	t.Version, t.UpdatedBy, t.UpdatedAt = t.Version+1, o.admin.ID, at
	return at, o.g.step(o.b, o.rng, o.adminActor, domain.ActionUpdated, t, &prev, at, "", o.emit)
}

// delete deletes a few rows; a deleted row has events but no row.
func (o *orgGen) delete(t *finance.Transaction, at time.Time) (bool, error) {
	if o.rng.IntN(100) >= 2 {
		return false, nil
	}
	at = at.Add(time.Duration(1+o.rng.IntN(600)) * time.Minute)
	if at.After(o.now) {
		return false, nil
	}
	gone := *t
	gone.Status, gone.Version = domain.Deleted, t.Version+1
	return true, o.g.step(o.b, o.rng, o.adminActor, domain.ActionDeleted, &gone, t, at, "", o.emit)
}

// cashCount counts the day's cash at its end on about three days in ten,
// mostly matching the book; one counted day in ten is counted twice.
func (o *orgGen) cashCount(prop tenancy.Property, d domain.Date, dayStart time.Time, closing int64) error {
	rng := o.rng
	if rng.IntN(10) >= 3 {
		return nil
	}
	at := o.clamp(dayStart.Add(24*time.Hour + 30*time.Minute).UTC())
	counted := max(0, closing)
	if rng.IntN(10) < 3 {
		counted = max(0, counted+rng.Int64N(10_000)-5_000)
	}
	versions := 1 + rng.IntN(10)/9
	var prev *int64
	for v := 1; v <= versions; v++ {
		c := finance.CashCount{PropertyID: prop.ID, Date: d, CountedClosingCents: counted, Version: v, CountedBy: o.admin.ID, CountedAt: at}
		ev, err := finance.CashCountEvent(id(rng, at), o.orgID, c, prev)
		if err != nil {
			return err
		}
		if err := o.b.fold.AddCashCount(ev, d, counted); err != nil {
			return err
		}
		o.events = append(o.events, ev)
		if v == versions {
			o.b.counts = append(o.b.counts, finance.CashCountRow(o.orgID, c))
		}
		p := counted
		prev = &p
		counted = max(0, closing)
		at = o.clamp(at.Add(time.Minute))
	}
	return nil
}

// dailyApprovals grants the manager daily approvals on a few days (UTC
// dates).
func (o *orgGen) dailyApprovals() error {
	today := domain.DateOf(o.now)
	for d := today.AddDays(-o.days + 1); !d.After(today); d = d.AddDays(1) {
		if o.rng.IntN(10) != 0 {
			continue
		}
		at := o.clamp(d.Time().Add(8 * time.Hour))
		a := finance.DailyApproval{ID: id(o.rng, at), ManagerUserID: o.manager.ID, Date: d, GrantedBy: o.admin.ID, GrantedAt: at}
		o.b.approvals = append(o.b.approvals, finance.DailyApprovalRow(o.orgID, a))
		if err := o.emit(finance.DailyApprovalEvent(id(o.rng, at), o.orgID, a)); err != nil {
			return err
		}
	}
	return nil
}

// chain appends the organization's events in the order they happened (an
// entity's events keep their version order; ties stay in generation
// order), chained as appends would have chained them, so hmp verify
// accepts a seeded history.
func (o *orgGen) chain() error {
	slices.SortStableFunc(o.events, func(x, y domain.Event) int { return x.Timestamp.Compare(y.Timestamp) })
	var chain eventstore.Chain
	for _, ev := range o.events {
		row, err := chain.BulkRow(ev)
		if err != nil {
			return err
		}
		o.b.events = append(o.b.events, row)
	}
	if head := chain.HeadRow(o.orgID); head != nil {
		o.b.heads = append(o.b.heads, head)
	}
	return nil
}

// step records one action on a row: its event, and its effect on the
// projection.
func (g *generator) step(b *batch, rng *rand.Rand, actor domain.Actor, action domain.Action, t, prev *finance.Transaction, at time.Time, notes string, emit func(domain.Event, error) error) error {
	ev, err := finance.BulkEvent(id(rng, at), actor, action, *t, prev, at, notes)
	if err != nil {
		return err
	}
	st := t.State()
	st.PropertyID = t.PropertyID
	var ps *domain.TransactionState
	if prev != nil {
		s := prev.State()
		s.PropertyID = prev.PropertyID
		ps = &s
	}
	if err := b.fold.AddTransaction(ev, st, ps); err != nil {
		return err
	}
	return emit(ev, nil)
}

// finish computes the projection rows of the batch.
func (g *generator) finish(b *batch) {
	b.daily, b.monthly = b.fold.Rows(g.stamp)
	b.fold = reports.Fold{}
}
