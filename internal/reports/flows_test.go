package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"hmp/internal/domain"
)

// Fixed identities for event fixtures.
var (
	orgA   = mustID("0190d7c4-0000-7000-8000-00000000000a")
	orgB   = mustID("0190d7c4-0000-7000-8000-00000000000b")
	propP  = mustID("0190d7c4-0000-7000-8000-0000000000a1")
	propQ  = mustID("0190d7c4-0000-7000-8000-0000000000a2")
	userU  = mustID("0190d7c4-0000-7000-8000-0000000000f1")
	epoch  = time.Date(2026, 6, 15, 6, 30, 0, 0, time.UTC)
	day1   = domain.MustDate("2026-06-01")
	day2   = domain.MustDate("2026-06-02")
	day31  = domain.MustDate("2026-05-31")
	daySep = domain.MustDate("2026-09-30")
)

func mustID(s string) domain.ID {
	id, err := domain.ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// state is a row state as events carry it.
func state(prop domain.ID, status domain.Status, amount int64, mode domain.PaymentMode, date domain.Date) domain.TransactionState {
	return domain.TransactionState{PropertyID: prop, Status: status, AmountCents: amount, Currency: "INR", PaymentMode: mode, BusinessDate: date}
}

// txEvent builds a revenue or expense event (the kind is the event type's
// prefix) of org with sequence seq.
func txEvent(org domain.ID, seq int64, typ domain.EventType, version int, after domain.TransactionState, prev *domain.TransactionState) domain.Event {
	kind := domain.Revenue
	if strings.HasPrefix(string(typ), "expense") {
		kind = domain.Expense
	}
	dates := []domain.Date{after.BusinessDate}
	if prev != nil && prev.BusinessDate != after.BusinessDate {
		dates = append(dates, prev.BusinessDate)
	}
	md, err := json.Marshal(domain.TransactionMetadata{TransactionState: after, Previous: prev, AffectedReportDates: dates})
	if err != nil {
		panic(err)
	}
	pid := after.PropertyID
	return domain.Event{ID: domain.NewID(epoch), Version: domain.EventVersion, Type: typ, OrgID: org, PropertyID: &pid,
		UserID: userU, EntityType: domain.EntityType(kind), EntityID: mustID(fmt.Sprintf("0190d7c4-0000-7000-8000-%012d", seq%1000)),
		AggregateVersion: version, Timestamp: epoch, Metadata: md, Sequence: seq}
}

// countEvent builds a cash_balance_updated event: the version-th count of
// (prop, date).
func countEvent(org domain.ID, seq int64, prop domain.ID, date domain.Date, version int, counted int64) domain.Event {
	md, err := json.Marshal(domain.CashCountMetadata{Date: date, CountedClosingCents: counted, AffectedReportDates: []domain.Date{date}})
	if err != nil {
		panic(err)
	}
	return domain.Event{ID: domain.NewID(epoch), Version: domain.EventVersion, Type: domain.CashBalanceUpdated, OrgID: org, PropertyID: &prop,
		UserID: userU, EntityType: domain.EntityCashBalance, EntityID: domain.NewID(epoch), AggregateVersion: version,
		Timestamp: epoch, Metadata: md, Sequence: seq}
}

func approvalEvent(org domain.ID, seq int64, date domain.Date) domain.Event {
	md, _ := json.Marshal(domain.DailyApprovalMetadata{ManagerUserID: userU, Date: date})
	return domain.Event{ID: domain.NewID(epoch), Version: domain.EventVersion, Type: domain.DailyApprovalGranted, OrgID: org,
		UserID: userU, EntityType: domain.EntityDailyApproval, EntityID: domain.NewID(epoch), AggregateVersion: 1,
		Timestamp: epoch, Metadata: md, Sequence: seq}
}

// net sums changes per daily row and drops rows they leave untouched.
type netEffect struct {
	flows   map[dayKey]Flows
	counted map[dayKey][2]int64 // counted closing, version
}

func sumChanges(cs []change) netEffect {
	n := netEffect{flows: map[dayKey]Flows{}, counted: map[dayKey][2]int64{}}
	for _, c := range cs {
		f := n.flows[c.key]
		f.Add(c.flows, 1)
		n.flows[c.key] = f
		if c.counted != nil {
			n.counted[c.key] = [2]int64{*c.counted, int64(c.countedVersion)}
		}
	}
	maps.DeleteFunc(n.flows, func(_ dayKey, f Flows) bool { return f.IsZero() })
	return n
}

func key(prop domain.ID, d domain.Date) dayKey { return dayKey{orgA, prop, d} }

func TestChanges(t *testing.T) {
	t.Parallel()
	approvedCash := state(propP, domain.Approved, 1000, domain.Cash, day1)
	pendingCash := state(propP, domain.Pending, 1000, domain.Cash, day1)
	ptr := func(s domain.TransactionState) *domain.TransactionState { return &s }
	with := func(s domain.TransactionState, fn func(*domain.TransactionState)) domain.TransactionState {
		fn(&s)
		return s
	}
	// The envelope's property stands in for a state without one.
	fill := txEvent(orgA, 1, domain.RevenueAdded, 1, with(approvedCash, func(s *domain.TransactionState) { s.PropertyID = domain.ID{} }), nil)
	fill.PropertyID = &propQ
	type want struct {
		flows   map[dayKey]Flows
		counted map[dayKey][2]int64
	}
	tests := []struct {
		name string
		ev   domain.Event
		want want
	}{
		{"revenue added by an admin is approved cash in", txEvent(orgA, 1, domain.RevenueAdded, 1, approvedCash, nil),
			want{flows: map[dayKey]Flows{key(propP, day1): {CashReceived: 1000, ApprovedCount: 1}}}},
		{"revenue added by a manager is pending", txEvent(orgA, 1, domain.RevenueAdded, 1, with(pendingCash, func(s *domain.TransactionState) { s.PaymentMode = domain.Bank }), nil),
			want{flows: map[dayKey]Flows{key(propP, day1): {PendingBankReceived: 1000, PendingCount: 1}}}},
		{"expense added by an admin is approved cash out", txEvent(orgA, 1, domain.ExpenseAdded, 1, approvedCash, nil),
			want{flows: map[dayKey]Flows{key(propP, day1): {CashExpenses: 1000, ApprovedCount: 1}}}},
		{"expense added in bank by a manager", txEvent(orgA, 1, domain.ExpenseAdded, 1, with(pendingCash, func(s *domain.TransactionState) { s.PaymentMode = domain.Bank }), nil),
			want{flows: map[dayKey]Flows{key(propP, day1): {PendingBankExpenses: 1000, PendingCount: 1}}}},
		{"update moving the date leaves the old day and enters the new one",
			txEvent(orgA, 2, domain.RevenueUpdated, 2, with(approvedCash, func(s *domain.TransactionState) { s.BusinessDate = day2 }), ptr(approvedCash)),
			want{flows: map[dayKey]Flows{
				key(propP, day1): {CashReceived: -1000, ApprovedCount: -1},
				key(propP, day2): {CashReceived: 1000, ApprovedCount: 1}}}},
		{"update moving the date back across a month",
			txEvent(orgA, 2, domain.ExpenseUpdated, 2, with(approvedCash, func(s *domain.TransactionState) { s.BusinessDate = day31 }), ptr(approvedCash)),
			want{flows: map[dayKey]Flows{
				key(propP, day1):  {CashExpenses: -1000, ApprovedCount: -1},
				key(propP, day31): {CashExpenses: 1000, ApprovedCount: 1}}}},
		{"update moving the property",
			txEvent(orgA, 2, domain.RevenueUpdated, 2, with(approvedCash, func(s *domain.TransactionState) { s.PropertyID = propQ }), ptr(approvedCash)),
			want{flows: map[dayKey]Flows{
				key(propP, day1): {CashReceived: -1000, ApprovedCount: -1},
				key(propQ, day1): {CashReceived: 1000, ApprovedCount: 1}}}},
		{"update moving cash to bank keeps the count",
			txEvent(orgA, 2, domain.RevenueUpdated, 2, with(approvedCash, func(s *domain.TransactionState) { s.PaymentMode = domain.Bank }), ptr(approvedCash)),
			want{flows: map[dayKey]Flows{key(propP, day1): {CashReceived: -1000, BankReceived: 1000}}}},
		{"update moving bank to cash of an expense",
			txEvent(orgA, 2, domain.ExpenseUpdated, 2, approvedCash, ptr(with(approvedCash, func(s *domain.TransactionState) { s.PaymentMode = domain.Bank }))),
			want{flows: map[dayKey]Flows{key(propP, day1): {CashExpenses: 1000, BankExpenses: -1000}}}},
		{"update of the amount moves the difference",
			txEvent(orgA, 2, domain.RevenueUpdated, 2, with(approvedCash, func(s *domain.TransactionState) { s.AmountCents = 2500 }), ptr(approvedCash)),
			want{flows: map[dayKey]Flows{key(propP, day1): {CashReceived: 1500}}}},
		{"update of the description moves nothing",
			txEvent(orgA, 2, domain.RevenueUpdated, 2, with(approvedCash, func(s *domain.TransactionState) { s.Description = "late" }), ptr(approvedCash)),
			want{}},
		{"manager edit puts an approved row back to pending",
			txEvent(orgA, 2, domain.ExpenseUpdated, 2, with(pendingCash, func(s *domain.TransactionState) { s.AmountCents = 900 }), ptr(approvedCash)),
			want{flows: map[dayKey]Flows{key(propP, day1): {CashExpenses: -1000, ApprovedCount: -1, PendingCashExpenses: 900, PendingCount: 1}}}},
		{"approve turns pending into approved", txEvent(orgA, 2, domain.RevenueApproved, 2, approvedCash, ptr(pendingCash)),
			want{flows: map[dayKey]Flows{key(propP, day1): {CashReceived: 1000, ApprovedCount: 1, PendingCashReceived: -1000, PendingCount: -1}}}},
		{"approve of an expense", txEvent(orgA, 2, domain.ExpenseApproved, 2, approvedCash, ptr(pendingCash)),
			want{flows: map[dayKey]Flows{key(propP, day1): {CashExpenses: 1000, ApprovedCount: 1, PendingCashExpenses: -1000, PendingCount: -1}}}},
		{"reject of a pending row leaves the approved figures alone",
			txEvent(orgA, 2, domain.RevenueRejected, 2, with(pendingCash, func(s *domain.TransactionState) { s.Status = domain.Rejected }), ptr(pendingCash)),
			want{flows: map[dayKey]Flows{key(propP, day1): {PendingCashReceived: -1000, PendingCount: -1}}}},
		{"reject of a pending expense",
			txEvent(orgA, 2, domain.ExpenseRejected, 2, with(pendingCash, func(s *domain.TransactionState) { s.Status = domain.Rejected }), ptr(pendingCash)),
			want{flows: map[dayKey]Flows{key(propP, day1): {PendingCashExpenses: -1000, PendingCount: -1}}}},
		{"delete of an approved row takes it out",
			txEvent(orgA, 3, domain.RevenueDeleted, 3, with(approvedCash, func(s *domain.TransactionState) { s.Status = domain.Deleted }), ptr(approvedCash)),
			want{flows: map[dayKey]Flows{key(propP, day1): {CashReceived: -1000, ApprovedCount: -1}}}},
		{"delete of an approved expense",
			txEvent(orgA, 3, domain.ExpenseDeleted, 3, with(approvedCash, func(s *domain.TransactionState) { s.Status = domain.Deleted }), ptr(approvedCash)),
			want{flows: map[dayKey]Flows{key(propP, day1): {CashExpenses: -1000, ApprovedCount: -1}}}},
		{"delete of a pending row",
			txEvent(orgA, 3, domain.ExpenseDeleted, 2, with(pendingCash, func(s *domain.TransactionState) { s.Status = domain.Deleted }), ptr(pendingCash)),
			want{flows: map[dayKey]Flows{key(propP, day1): {PendingCashExpenses: -1000, PendingCount: -1}}}},
		{"delete of a rejected row moves nothing",
			txEvent(orgA, 3, domain.RevenueDeleted, 3, with(pendingCash, func(s *domain.TransactionState) { s.Status = domain.Deleted }),
				ptr(with(pendingCash, func(s *domain.TransactionState) { s.Status = domain.Rejected }))),
			want{}},
		{"the row state may omit its property: the envelope's is used", fill,
			want{flows: map[dayKey]Flows{key(propQ, day1): {CashReceived: 1000, ApprovedCount: 1}}}},
		{"first cash count", countEvent(orgA, 4, propP, day1, 1, 12345),
			want{counted: map[dayKey][2]int64{key(propP, day1): {12345, 1}}}},
		{"a replacing count is the next version", countEvent(orgA, 5, propP, day1, 2, 0),
			want{counted: map[dayKey][2]int64{key(propP, day1): {0, 2}}}},
		{"daily approval moves nothing", approvalEvent(orgA, 6, day1), want{}},
	}
	seen := map[domain.EventType]bool{}
	for _, tt := range tests {
		seen[tt.ev.Type] = true
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs, err := changes(tt.ev)
			if err != nil {
				t.Fatalf("changes: %v", err)
			}
			got := sumChanges(cs)
			if tt.want.flows == nil {
				tt.want.flows = map[dayKey]Flows{}
			}
			if tt.want.counted == nil {
				tt.want.counted = map[dayKey][2]int64{}
			}
			if !maps.Equal(got.flows, tt.want.flows) {
				t.Errorf("flows = %+v, want %+v", got.flows, tt.want.flows)
			}
			if !maps.Equal(got.counted, tt.want.counted) {
				t.Errorf("counted = %v, want %v", got.counted, tt.want.counted)
			}
			// What decode makes of the same event on the wire.
			data, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			ev, cs2, err := decode(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if ev.Sequence != tt.ev.Sequence || ev.OrgID != tt.ev.OrgID || ev.Type != tt.ev.Type {
				t.Errorf("decoded %+v, want %+v", ev, tt.ev)
			}
			if g2 := sumChanges(cs2); !maps.Equal(g2.flows, got.flows) || !maps.Equal(g2.counted, got.counted) {
				t.Errorf("decoded effect %+v differs from %+v", g2, got)
			}
		})
	}
	for _, et := range domain.EventTypes() {
		if !seen[et] {
			t.Errorf("no case for event type %s", et)
		}
	}
}

func TestChangesPoison(t *testing.T) {
	t.Parallel()
	approvedCash := state(propP, domain.Approved, 1000, domain.Cash, day1)
	ptr := func(s domain.TransactionState) *domain.TransactionState { return &s }
	with := func(s domain.TransactionState, fn func(*domain.TransactionState)) domain.TransactionState {
		fn(&s)
		return s
	}
	edit := func(ev domain.Event, fn func(*domain.Event)) domain.Event {
		fn(&ev)
		return ev
	}
	add := txEvent(orgA, 1, domain.RevenueAdded, 1, approvedCash, nil)
	count := countEvent(orgA, 2, propP, day1, 1, 500)
	tests := []struct {
		name string
		ev   domain.Event
	}{
		{"unknown event type", edit(add, func(e *domain.Event) { e.Type = "revenue_archived" })},
		{"no event type", edit(add, func(e *domain.Event) { e.Type = "" })},
		{"no organization", edit(add, func(e *domain.Event) { e.OrgID = domain.ID{} })},
		{"no sequence", edit(add, func(e *domain.Event) { e.Sequence = 0 })},
		{"negative sequence", edit(add, func(e *domain.Event) { e.Sequence = -4 })},
		{"revenue event about an expense", edit(add, func(e *domain.Event) { e.EntityType = domain.EntityExpense })},
		{"revenue event about a cash count", edit(add, func(e *domain.Event) { e.EntityType = domain.EntityCashBalance })},
		{"metadata is not an object", edit(add, func(e *domain.Event) { e.Metadata = json.RawMessage(`[1,2]`) })},
		{"amount of the wrong type", edit(add, func(e *domain.Event) {
			e.Metadata = json.RawMessage(`{"status":"approved","amountCents":"10","paymentMode":"cash","businessDate":"2026-06-01"}`)
		})},
		{"a date that does not exist", edit(add, func(e *domain.Event) {
			e.Metadata = json.RawMessage(`{"status":"approved","amountCents":10,"paymentMode":"cash","businessDate":"2026-02-30"}`)
		})},
		{"unknown status", txEvent(orgA, 1, domain.RevenueAdded, 1, with(approvedCash, func(s *domain.TransactionState) { s.Status = "archived" }), nil)},
		{"zero amount", txEvent(orgA, 1, domain.RevenueAdded, 1, with(approvedCash, func(s *domain.TransactionState) { s.AmountCents = 0 }), nil)},
		{"negative amount", txEvent(orgA, 1, domain.ExpenseAdded, 1, with(approvedCash, func(s *domain.TransactionState) { s.AmountCents = -5 }), nil)},
		{"amount over the maximum", txEvent(orgA, 1, domain.RevenueAdded, 1, with(approvedCash, func(s *domain.TransactionState) { s.AmountCents = domain.MaxAmountCents + 1 }), nil)},
		{"unknown payment mode", txEvent(orgA, 1, domain.RevenueAdded, 1, with(approvedCash, func(s *domain.TransactionState) { s.PaymentMode = "card" }), nil)},
		{"no business date", txEvent(orgA, 1, domain.RevenueAdded, 1, with(approvedCash, func(s *domain.TransactionState) { s.BusinessDate = domain.Date{} }), nil)},
		{"no property anywhere", edit(txEvent(orgA, 1, domain.RevenueAdded, 1, with(approvedCash, func(s *domain.TransactionState) { s.PropertyID = domain.ID{} }), nil),
			func(e *domain.Event) { e.PropertyID = nil })},
		{"broken previous state", txEvent(orgA, 2, domain.RevenueUpdated, 2, approvedCash, ptr(with(approvedCash, func(s *domain.TransactionState) { s.AmountCents = 0 })))},
		{"update without a previous state", txEvent(orgA, 2, domain.RevenueUpdated, 2, approvedCash, nil)},
		{"update at version 1 without a previous state", txEvent(orgA, 2, domain.RevenueUpdated, 1, approvedCash, nil)},
		{"approve without a previous state", txEvent(orgA, 2, domain.ExpenseApproved, 1, approvedCash, nil)},
		{"add with a previous state", txEvent(orgA, 1, domain.RevenueAdded, 1, approvedCash, ptr(approvedCash))},
		{"delete without a previous state", txEvent(orgA, 2, domain.RevenueDeleted, 1, with(approvedCash, func(s *domain.TransactionState) { s.Status = domain.Deleted }), nil)},
		{"cash count without a property", edit(count, func(e *domain.Event) { e.PropertyID = nil })},
		{"cash count without a date", edit(count, func(e *domain.Event) { e.Metadata = json.RawMessage(`{"countedClosingCents":5}`) })},
		{"negative cash count", countEvent(orgA, 2, propP, day1, 1, -1)},
		{"cash count over the maximum", countEvent(orgA, 2, propP, day1, 1, domain.MaxAmountCents+1)},
		{"cash count at version 0", countEvent(orgA, 2, propP, day1, 0, 5)},
		{"cash count version beyond the stored range", countEvent(orgA, 2, propP, day1, math.MaxInt32+1, 5)},
		{"cash count metadata of the wrong shape", edit(count, func(e *domain.Event) { e.Metadata = json.RawMessage(`"five"`) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs, err := changes(tt.ev)
			if !errors.Is(err, errPoison) {
				t.Fatalf("changes = %+v, %v; want a poison error", cs, err)
			}
			data, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := decode(data); !errors.Is(err, errPoison) {
				t.Fatalf("decode: %v, want a poison error", err)
			}
		})
	}
	for _, raw := range []string{``, `{`, `not json`, `[]`, `"event"`, `{"eventType":"revenue_added","orgId":"nope"}`, `{"sequence":"1"}`} {
		t.Run("undecodable "+raw, func(t *testing.T) {
			t.Parallel()
			if _, _, err := decode([]byte(raw)); !errors.Is(err, errPoison) {
				t.Fatalf("decode(%q): %v, want a poison error", raw, err)
			}
		})
	}
}
