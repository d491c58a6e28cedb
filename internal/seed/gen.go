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

// gen appends organization i to b.
func (g *generator) gen(b *batch, i int) error {
	rng := rand.New(rand.NewPCG(g.cfg.Seed, uint64(i)))
	now := g.now
	days := g.cfg.Days
	// Organizations were created one millisecond apart in index order, so
	// their (time ordered) ids and every key that starts with one grow
	// with the index: each chunk lands in its own key range.
	created := now.AddDate(0, 0, -days-2).Add(-2 * time.Hour).Add(time.Duration(i) * time.Millisecond)
	orgID := id(rng, created)
	b.orgs = append(b.orgs, tenancy.OrgRow(orgID, fmt.Sprintf("Seed Org %d", i), created))
	admin := tenancy.User{OrgID: orgID, ID: id(rng, created), Email: AdminEmail(i), DisplayName: fmt.Sprintf("Admin %d", i), Role: domain.Admin, CreatedAt: created}
	manager := tenancy.User{OrgID: orgID, ID: id(rng, created), Email: ManagerEmail(i), DisplayName: fmt.Sprintf("Manager %d", i), Role: domain.Manager, CreatedAt: created}
	b.users = append(b.users, tenancy.UserRow(admin), tenancy.UserRow(manager))
	b.logins = append(b.logins, tenancy.LoginRow(admin, g.hash), tenancy.LoginRow(manager, g.hash))
	adminActor := domain.Actor{OrgID: orgID, UserID: admin.ID, Role: domain.Admin}
	managerActor := domain.Actor{OrgID: orgID, UserID: manager.ID, Role: domain.Manager}

	nProps := 1 + rng.IntN(3)
	props := make([]tenancy.Property, nProps)
	acct := Account{Index: i, OrgID: orgID.String(), AdminEmail: admin.Email, ManagerEmail: manager.Email}
	for p := range props {
		z := rng.IntN(len(zones))
		props[p] = tenancy.Property{OrgID: orgID, ID: id(rng, created), Name: fmt.Sprintf("Property %d-%d", i, p),
			Type: propertyTypes[rng.IntN(len(propertyTypes))], Timezone: zones[z].tz, Currency: zones[z].currency,
			CreatedAt: created, Location: g.locs[z]}
		b.properties = append(b.properties, tenancy.PropertyRow(props[p]))
		b.managerProps = append(b.managerProps, tenancy.ManagerPropertyRow(orgID, manager.ID, props[p].ID))
		acct.PropertyIDs = append(acct.PropertyIDs, props[p].ID.String())
	}
	if i < g.keep {
		b.accounts = append(b.accounts, acct)
	}

	var events []domain.Event
	emit := func(ev domain.Event, err error) error {
		if err != nil {
			return err
		}
		events = append(events, ev)
		return nil
	}
	clamp := func(t time.Time) time.Time {
		if t.After(now) {
			return now
		}
		return t
	}
	for _, prop := range props {
		today := domain.BusinessDate(now, prop.Location)
		closing := int64(0)
		for d := today.AddDays(-days + 1); !d.After(today); d = d.AddDays(1) {
			dayStart := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, prop.Location)
			span := min(now.Sub(dayStart), 24*time.Hour)
			if span < time.Minute {
				continue
			}
			n := int(g.cfg.Density)
			if rng.Float64() < g.cfg.Density-float64(n) {
				n++
			}
			var dayCash int64
			for range n {
				occurred := dayStart.Add(time.Duration(rng.Int64N(int64(span/time.Second))) * time.Second).UTC()
				t := finance.Transaction{OrgID: orgID, Kind: domain.Revenue, PropertyID: prop.ID, Currency: prop.Currency,
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
				at := clamp(occurred.Add(time.Duration(1+rng.IntN(120)) * time.Minute))
				t.ID = id(rng, at)
				t.CreatedAt, t.UpdatedAt = at, at
				actor := adminActor
				if rng.IntN(10) < 4 {
					actor = managerActor
					t.Status = domain.Pending
				} else {
					t.Status = domain.Approved
					// A copy: at moves on to later steps of the row.
					reviewed := at
					t.ReviewedBy, t.ReviewedAt = &admin.ID, &reviewed
				}
				t.CreatedBy, t.UpdatedBy = actor.UserID, actor.UserID
				if err := g.step(b, rng, actor, domain.ActionAdded, &t, nil, at, "", emit); err != nil {
					return err
				}
				// A manager's row is reviewed later, mostly approved.
				if t.Status == domain.Pending {
					r := rng.IntN(100)
					at = at.Add(time.Duration(10+rng.IntN(24*60)) * time.Minute)
					if r < 85 && !at.After(now) {
						prev := t
						t.Status, t.Version, t.UpdatedBy, t.UpdatedAt = domain.Approved, t.Version+1, admin.ID, at
						reviewed := at
						t.ReviewedBy, t.ReviewedAt = &admin.ID, &reviewed
						action, notes := domain.ActionApproved, ""
						if r < 5 {
							t.Status, action, notes = domain.Rejected, domain.ActionRejected, "not ours"
							t.ReviewNotes = notes
						}
						if err := g.step(b, rng, adminActor, action, &t, &prev, at, notes, emit); err != nil {
							return err
						}
					}
				}
				// Some rows get corrected by an ADMIN (same day, new amount).
				if t.Status != domain.Rejected && rng.IntN(100) < 6 {
					at = at.Add(time.Duration(1+rng.IntN(600)) * time.Minute)
					if !at.After(now) {
						prev := t
						t.AmountCents = max(1, t.AmountCents+rng.Int64N(20_000)-10_000)
						t.Description = "corrected"
						t.Version, t.UpdatedBy, t.UpdatedAt = t.Version+1, admin.ID, at
						if err := g.step(b, rng, adminActor, domain.ActionUpdated, &t, &prev, at, "", emit); err != nil {
							return err
						}
					}
				}
				// And a few are deleted.
				if rng.IntN(100) < 2 {
					at = at.Add(time.Duration(1+rng.IntN(600)) * time.Minute)
					if !at.After(now) {
						gone := t
						gone.Status, gone.Version = domain.Deleted, t.Version+1
						if err := g.step(b, rng, adminActor, domain.ActionDeleted, &gone, &t, at, "", emit); err != nil {
							return err
						}
						continue
					}
				}
				b.transactions = append(b.transactions, finance.BulkRow(&t))
				if t.Status == domain.Approved && t.PaymentMode == domain.Cash {
					if t.Kind == domain.Revenue {
						dayCash += t.AmountCents
					} else {
						dayCash -= t.AmountCents
					}
				}
			}
			closing += dayCash
			// Cash counts at the day's end, mostly matching the book.
			if rng.IntN(10) < 3 {
				at := clamp(dayStart.Add(24*time.Hour + 30*time.Minute).UTC())
				counted := max(0, closing)
				if rng.IntN(10) < 3 {
					counted = max(0, counted+rng.Int64N(10_000)-5_000)
				}
				versions := 1 + rng.IntN(10)/9 // one day in ten is counted twice
				var prev *int64
				for v := 1; v <= versions; v++ {
					c := reports.CashCount{PropertyID: prop.ID, Date: d, CountedClosingCents: counted, Version: v, CountedBy: admin.ID, CountedAt: at}
					ev, err := reports.CashCountEvent(id(rng, at), orgID, c, prev)
					if err != nil {
						return err
					}
					if err := b.fold.AddCashCount(ev, d, counted); err != nil {
						return err
					}
					events = append(events, ev)
					if v == versions {
						b.counts = append(b.counts, reports.CashCountRow(orgID, c))
					}
					p := counted
					prev = &p
					counted = max(0, closing)
					at = clamp(at.Add(time.Minute))
				}
			}
		}
	}
	// Daily approvals for the manager, on a few days (UTC dates).
	for d := domain.DateOf(now).AddDays(-days + 1); !d.After(domain.DateOf(now)); d = d.AddDays(1) {
		if rng.IntN(10) != 0 {
			continue
		}
		at := clamp(d.Time().Add(8 * time.Hour))
		a := finance.DailyApproval{ID: id(rng, at), ManagerUserID: manager.ID, Date: d, GrantedBy: admin.ID, GrantedAt: at}
		b.approvals = append(b.approvals, finance.DailyApprovalRow(orgID, a))
		if err := emit(finance.DailyApprovalEvent(id(rng, at), orgID, a)); err != nil {
			return err
		}
	}
	// The organization's events in the order they happened; an entity's
	// events keep their version order (ties stay in generation order).
	slices.SortStableFunc(events, func(x, y domain.Event) int { return x.Timestamp.Compare(y.Timestamp) })
	// Chained as appends would have chained them, so hmp verify accepts
	// a seeded history.
	var chain eventstore.Chain
	for _, ev := range events {
		row, err := chain.BulkRow(ev)
		if err != nil {
			return err
		}
		b.events = append(b.events, row)
	}
	if head := chain.HeadRow(orgID); head != nil {
		b.heads = append(b.heads, head)
	}
	b.n++
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
