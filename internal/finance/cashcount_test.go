package finance_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"hmp/internal/domain"
	"hmp/internal/finance"
)

func TestRecordCashCount(t *testing.T) {
	t.Parallel()

	t.Run("a later count replaces the day's with the next version and its event", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		first, w1, err := f.fin.RecordCashCount(t.Context(), f.mgr, f.prop, today, 12_500)
		if err != nil {
			t.Fatal(err)
		}
		if first.Version != 1 || first.CountedClosingCents != 12_500 || first.CountedBy != f.mgr.UserID || w1.Token.TxID == 0 {
			t.Fatalf("first count %+v, written %+v", first, w1)
		}
		second, w2, err := f.fin.RecordCashCount(t.Context(), f.admin, f.prop, today, 13_000)
		if err != nil {
			t.Fatal(err)
		}
		if second.Version != 2 || w2.Token.TxID <= w1.Token.TxID {
			t.Fatalf("second count %+v, written %+v after %+v", second, w2, w1)
		}
		var counted int64
		var version int
		if err := f.pool.QueryRow(t.Context(), `SELECT counted_closing_cents, version FROM cash_counts WHERE org_id = $1 AND property_id = $2 AND date = $3`,
			f.org, f.prop, today.Time()).Scan(&counted, &version); err != nil {
			t.Fatal(err)
		}
		if counted != 13_000 || version != 2 {
			t.Fatalf("row %d v%d, want 13000 v2", counted, version)
		}
		ev := f.lastEvent(t, domain.EntityCashBalance, finance.CashCountID(f.org, f.prop, today))
		var md domain.CashCountMetadata
		if err := json.Unmarshal(ev.Metadata, &md); err != nil {
			t.Fatal(err)
		}
		if ev.Type != domain.CashBalanceUpdated || ev.AggregateVersion != 2 || md.CountedClosingCents != 13_000 ||
			md.Previous == nil || md.Previous.CountedClosingCents != 12_500 {
			t.Fatalf("event %+v, metadata %+v", ev, md)
		}
		// The bulk helpers produce what the write path wrote.
		want, err := finance.CashCountEvent(ev.ID, f.org, second, &first.CountedClosingCents)
		if err != nil {
			t.Fatal(err)
		}
		var wantMD domain.CashCountMetadata
		if err := json.Unmarshal(want.Metadata, &wantMD); err != nil {
			t.Fatal(err)
		}
		if want.EntityID != ev.EntityID || want.AggregateVersion != ev.AggregateVersion || !reflect.DeepEqual(wantMD, md) {
			t.Fatalf("CashCountEvent %+v, the write path appended %+v", want, ev)
		}
	})

	t.Run("bad input names its field", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		_, _, err := f.fin.RecordCashCount(t.Context(), f.admin, f.prop, today.AddDays(400), -1)
		var verr *domain.ValidationError
		if !errors.As(err, &verr) || len(verr.Fields) != 2 || verr.Fields[0].Field != "body.countedClosingCents" || verr.Fields[1].Field != "body.date" {
			t.Fatalf("want a validation error naming body.countedClosingCents and body.date, got %v", err)
		}
	})

	t.Run("a manager of another property finds no property", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		other := f.property(t, "Hill Top", "")
		_, _, err := f.fin.RecordCashCount(t.Context(), f.mgr, other, today, 1)
		var nf *domain.NotFoundError
		if !errors.As(err, &nf) || nf.Field != "body.propertyId" {
			t.Fatalf("want not found naming body.propertyId, got %v", err)
		}
	})
}
