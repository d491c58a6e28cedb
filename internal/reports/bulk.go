package reports

import (
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"hmp/internal/domain"
)

// Bulk loading (hmp seed) writes a history and its projection through
// COPY. Fold computes the projection rows with the projector's own effect
// rules (effects, contribution), so that a seeded cash book is exactly the
// one the projector would have built from the same events (the cash
// counts' rows and events are finance's: finance.CashCountRow).

// Fold accumulates the effect of events on the daily rows and the monthly
// rollups of one batch of organizations. The zero value is ready to use.
type Fold struct {
	days   map[dayKey]*foldDay
	months map[dayKey]*Flows
}

type foldDay struct {
	flows          Flows
	counted        *int64
	countedVersion int
}

// AddTransaction folds the event of a revenue or expense change: ev's
// envelope (its Sequence is not needed), the row's state after it and the
// one before (nil for an add). It fails on what the projector would
// dead-letter.
func (f *Fold) AddTransaction(ev domain.Event, state domain.TransactionState, prev *domain.TransactionState) error {
	ev.Sequence = 1 // effects insists on a stored event; the value is not used
	chs, err := effects(ev, &wireMeta{TransactionState: state, Previous: prev})
	if err != nil {
		return err
	}
	f.add(chs)
	return nil
}

// AddCashCount folds a cash_balance_updated event.
func (f *Fold) AddCashCount(ev domain.Event, date domain.Date, counted int64) error {
	ev.Sequence = 1
	chs, err := effects(ev, &wireMeta{Date: date, CountedClosingCents: counted})
	if err != nil {
		return err
	}
	f.add(chs)
	return nil
}

func (f *Fold) add(chs []change) {
	if f.days == nil {
		f.days, f.months = map[dayKey]*foldDay{}, map[dayKey]*Flows{}
	}
	for _, c := range chs {
		if c.counted == nil && c.flows.IsZero() {
			continue // the projector skips a change that moves nothing
		}
		d := f.days[c.key]
		if d == nil {
			d = &foldDay{}
			f.days[c.key] = d
		}
		if c.counted != nil {
			if c.countedVersion > d.countedVersion {
				v := *c.counted
				d.counted, d.countedVersion = &v, c.countedVersion
			}
			continue // a cash count moves no money
		}
		d.flows.Add(c.flows, 1)
		mk := dayKey{c.key.org, c.key.property, c.key.date.MonthStart()}
		m := f.months[mk]
		if m == nil {
			m = &Flows{}
			f.months[mk] = m
		}
		m.Add(c.flows, 1)
	}
}

// Bulk column lists, in the order of the matching row helpers' values.
var (
	DailyColumns = []string{"org_id", "property_id", "business_date", "cash_received", "bank_received", "cash_expenses",
		"bank_expenses", "pending_cash_received", "pending_bank_received", "pending_cash_expenses", "pending_bank_expenses",
		"approved_count", "pending_count", "counted_closing", "counted_version", "updated_at"}
	MonthlyColumns = []string{"org_id", "property_id", "month", "cash_received", "bank_received", "cash_expenses",
		"bank_expenses", "pending_cash_received", "pending_bank_received", "pending_cash_expenses", "pending_bank_expenses",
		"approved_count", "pending_count", "updated_at"}
)

// Rows returns the daily and monthly rows of everything folded, in key
// order, stamped updated at now.
func (f *Fold) Rows(now time.Time) (daily, monthly [][]any) {
	keys := make([]dayKey, 0, len(f.days))
	for k := range f.days {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	daily = make([][]any, 0, len(keys))
	for _, k := range keys {
		d := f.days[k]
		var counted pgtype.Int8
		if d.counted != nil {
			counted = pgtype.Int8{Int64: *d.counted, Valid: true}
		}
		fl := d.flows
		daily = append(daily, []any{uuid(k.org), uuid(k.property), k.date.Time(), fl.CashReceived, fl.BankReceived,
			fl.CashExpenses, fl.BankExpenses, fl.PendingCashReceived, fl.PendingBankReceived, fl.PendingCashExpenses,
			fl.PendingBankExpenses, int32(fl.ApprovedCount), int32(fl.PendingCount), counted, int32(d.countedVersion), now})
	}
	keys = keys[:0]
	for k := range f.months {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	monthly = make([][]any, 0, len(keys))
	for _, k := range keys {
		fl := f.months[k]
		monthly = append(monthly, []any{uuid(k.org), uuid(k.property), k.date.Time(), fl.CashReceived, fl.BankReceived,
			fl.CashExpenses, fl.BankExpenses, fl.PendingCashReceived, fl.PendingBankReceived, fl.PendingCashExpenses,
			fl.PendingBankExpenses, int32(fl.ApprovedCount), int32(fl.PendingCount), now})
	}
	return daily, monthly
}

func uuid(id domain.ID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// compareKeys orders day keys by organization, property and date: the
// primary key's order, which COPY into a fresh table keeps.
func compareKeys(a, b dayKey) int {
	if c := slices.Compare(a.org[:], b.org[:]); c != 0 {
		return c
	}
	if c := slices.Compare(a.property[:], b.property[:]); c != 0 {
		return c
	}
	return a.date.Compare(b.date)
}
