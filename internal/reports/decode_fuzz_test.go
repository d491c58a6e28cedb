package reports

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"hmp/internal/domain"
)

// FuzzDecode feeds the projector's event decoder any message: it must
// never panic, must call anything it cannot apply poison (so that it is
// dead-lettered at once rather than retried), and what it accepts must be
// a change the rows can hold: a known day of a known property, amounts
// within the per-row bound.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, chs, err := decode(data)
		if err != nil {
			if !errors.Is(err, errPoison) {
				t.Fatalf("decode error is not poison: %v", err)
			}
			return
		}
		if ev.OrgID.IsZero() || ev.Sequence <= 0 {
			t.Fatalf("accepted an event without organization or sequence: %+v", ev)
		}
		for _, c := range chs {
			if c.key.org != ev.OrgID || c.key.property.IsZero() || c.key.date.IsZero() {
				t.Fatalf("change without a full key: %+v", c)
			}
			if _, err := domain.ParseDate(c.key.date.String()); err != nil {
				t.Fatalf("change on a day that does not exist: %v", c.key.date)
			}
			fl := c.flows
			for _, v := range []int64{fl.CashReceived, fl.BankReceived, fl.CashExpenses, fl.BankExpenses,
				fl.PendingCashReceived, fl.PendingBankReceived, fl.PendingCashExpenses, fl.PendingBankExpenses} {
				if v < -domain.MaxAmountCents || v > domain.MaxAmountCents {
					t.Fatalf("change beyond the per-row bound: %+v", fl)
				}
			}
			if c.counted != nil && (*c.counted < 0 || *c.counted > domain.MaxAmountCents || c.countedVersion < 1) {
				t.Fatalf("cash count out of range: %d v%d", *c.counted, c.countedVersion)
			}
		}
		// The metadata-only path (events read back from the store) agrees.
		var env domain.Event
		if json.Unmarshal(data, &env) == nil && env.Metadata != nil {
			ev.Metadata = env.Metadata
			if _, err := changes(ev); err != nil {
				t.Fatalf("decode accepted what changes rejects: %v", err)
			}
		}
	})
}

// decodeSeeds are messages for the decoder fuzzers: every event shape the
// writers produce, and malformed ones.
func decodeSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	org, prop, entity := domain.NewID(time.Now()), domain.NewID(time.Now()), domain.NewID(time.Now())
	state := domain.TransactionState{PropertyID: prop, Status: domain.Approved, AmountCents: 5000, Currency: "INR",
		PaymentMode: domain.Cash, BusinessDate: domain.MustDate("2026-01-02"), Source: "room"}
	prev := state
	prev.BusinessDate = domain.MustDate("2025-12-31")
	prev.AmountCents = domain.MaxAmountCents
	seed := func(t domain.EventType, et domain.EntityType, md any) {
		b, err := json.Marshal(md)
		if err != nil {
			tb.Fatal(err)
		}
		ev, err := json.Marshal(domain.Event{ID: domain.NewID(time.Now()), Version: domain.EventVersion, Type: t, OrgID: org, PropertyID: &prop,
			UserID: entity, EntityType: et, EntityID: entity, AggregateVersion: 2, Timestamp: time.Now(), Metadata: b, Sequence: 7})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, ev)
	}
	seed(domain.TransactionEvent(domain.Revenue, domain.ActionAdded), "revenue", domain.TransactionMetadata{TransactionState: state})
	seed(domain.TransactionEvent(domain.Expense, domain.ActionUpdated), "expense", domain.TransactionMetadata{TransactionState: state, Previous: &prev})
	seed(domain.TransactionEvent(domain.Revenue, domain.ActionDeleted), "revenue",
		domain.TransactionMetadata{TransactionState: domain.TransactionState{Status: domain.Deleted}, Previous: &prev})
	seed(domain.TransactionEvent(domain.Revenue, domain.ActionAdded), "expense", domain.TransactionMetadata{TransactionState: state})
	seed(domain.TransactionEvent(domain.Revenue, domain.ActionUpdated), "revenue", domain.TransactionMetadata{TransactionState: state})
	seed(domain.CashBalanceUpdated, "cash_balance", domain.CashCountMetadata{Date: domain.MustDate("2026-01-02"), CountedClosingCents: 12})
	seed(domain.DailyApprovalGranted, "daily_approval", domain.DailyApprovalMetadata{ManagerUserID: entity, Date: domain.MustDate("2026-01-02")})
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `"x"`, `{"eventType":"revenue_added"}`,
		`{"eventId":"zz","eventType":"revenue_added","orgId":"` + org.String() + `","sequence":1,"metadata":{}}`,
		`{"eventType":"revenue_added","entityType":"revenue","orgId":"` + org.String() + `","propertyId":"` + prop.String() +
			`","sequence":1,"metadata":{"status":"approved","amountCents":-5,"paymentMode":"cash","businessDate":"2026-01-02"}}`,
		`{"eventType":"revenue_added","entityType":"revenue","orgId":"` + org.String() + `","propertyId":"` + prop.String() +
			`","sequence":1,"metadata":{"status":"approved","amountCents":9223372036854775807,"paymentMode":"cash","businessDate":"2026-01-02"}}`,
		`{"eventType":"revenue_added","entityType":"revenue","orgId":"` + org.String() + `","propertyId":"` + prop.String() +
			`","sequence":1,"metadata":{"status":"approved","amountCents":1,"paymentMode":"cash","businessDate":"2026-02-30"}}`,
		`{"eventType":"cash_balance_updated","orgId":"` + org.String() + `","propertyId":"` + prop.String() +
			`","sequence":9,"aggregateVersion":9999999999,"metadata":{"date":"2026-01-02","countedClosingCents":1}}`,
		`{"eventType":"revenue_added","metadata":{"previous":null,"status":"approved"},"sequence":-1}`,
		`{"timestamp":"not a time","metadata":[1,2,3]}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}
