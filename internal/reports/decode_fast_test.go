package reports

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"hmp/internal/domain"
)

// FuzzDecodeFast: whatever the fast decoder accepts, encoding/json accepts
// too and reads the same event, field by field; what it refuses goes to
// encoding/json, so the projector's rules are encoding/json's.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range append(decodeSeeds(f), fastDecodeSeeds(f)...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast wireEvent
		if !decodeFast(data, &fast) {
			return
		}
		var slow wireEvent
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("decodeFast accepted what encoding/json refuses (%v): %s", err, data)
		}
		if !sameWire(fast, slow) {
			t.Fatalf("decodeFast read\n%+v\nencoding/json read\n%+v\nfrom %s", fast, slow, data)
		}
	})
}

// TestDecodeFastTakesTheRelaysForm: the messages the relay writes take
// the fast path (else the speed-up is lost without a failure), and forms
// it must leave to encoding/json do not.
func TestDecodeFastTakesTheRelaysForm(t *testing.T) {
	t.Parallel()
	for i, s := range decodeSeeds(t)[:7] {
		var w wireEvent
		if !decodeFast(s, &w) {
			t.Errorf("seed %d not decoded fast: %s", i, s)
		}
	}
	canonical := fastDecodeSeeds(t)[0]
	for name, data := range map[string][]byte{
		"case-folded key":   bytes.Replace(canonical, []byte(`"orgId"`), []byte(`"OrgID"`), 1),
		"duplicate key":     bytes.Replace(canonical, []byte(`"sequence":7`), []byte(`"sequence":7,"sequence":8`), 1),
		"escaped string":    bytes.Replace(canonical, []byte(`"revenue_updated"`), []byte(`"revenue\u005fupdated"`), 1),
		"trailing data":     append(bytes.Clone(canonical), 'x'),
		"fractional number": bytes.Replace(canonical, []byte(`"sequence":7`), []byte(`"sequence":7.0`), 1),
	} {
		var w wireEvent
		if decodeFast(data, &w) {
			t.Errorf("%s: decoded fast, want encoding/json: %s", name, data)
		}
	}
}

// fastDecodeSeeds are the relay's form with the variations the fast path
// must get right or leave alone.
func fastDecodeSeeds(tb testing.TB) [][]byte {
	org, prop := domain.NewID(time.Now()), domain.NewID(time.Now())
	prev := domain.TransactionState{PropertyID: prop, Status: domain.Pending, AmountCents: 700, Currency: "USD",
		PaymentMode: domain.Bank, BusinessDate: domain.MustDate("2026-01-01"), Description: "a \"quoted\" note é",
		OccurredAt: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)}
	md, err := json.Marshal(domain.TransactionMetadata{TransactionState: prev, Previous: &prev,
		AffectedReportDates: []domain.Date{prev.BusinessDate}})
	if err != nil {
		tb.Fatal(err)
	}
	ev, err := json.Marshal(domain.Event{ID: domain.NewID(time.Now()), Version: domain.EventVersion, Type: domain.RevenueUpdated,
		OrgID: org, PropertyID: &prop, EntityType: "revenue", AggregateVersion: 3, Timestamp: time.Now(), Metadata: md, Sequence: 7})
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	out = append(out, ev,
		bytes.Replace(ev, []byte(`"propertyId":"`+prop.String()+`"`), []byte(`"propertyId":null`), 1),
		bytes.Replace(ev, []byte(`{"eventId"`), []byte(" {\n\t\"eventId\" "), 1),
		bytes.Replace(ev, []byte(`"aggregateVersion":3`), []byte(`"aggregateVersion":-0`), 1),
		bytes.Replace(ev, []byte(`"aggregateVersion":3`), []byte(`"aggregateVersion":1e2`), 1),
		bytes.Replace(ev, []byte(`"aggregateVersion":3`), []byte(`"aggregateVersion":03`), 1),
		bytes.Replace(ev, []byte(`"eventVersion":"v1"`), []byte(`"eventVersion":[1,{"a":[true,false,null,-1.5e-3]},"\ud800"]`), 1),
		bytes.Replace(ev, []byte(`"currency"`), []byte(`"CURRENCY"`), 1),
		bytes.Replace(ev, []byte(`"previous":{`), []byte(`"previous":{"date":"2026-01-01","previous":null,`), 1),
		bytes.Replace(ev, []byte(`"businessDate":"2026-01-01"`), []byte(`"businessDate":"0000-00-00"`), 1),
		bytes.Replace(ev, []byte(`"timestamp":"`), []byte(`"timestamp":"x`), 1),
	)
	return out
}

// sameWire compares two decoded events; times by instant and offset, as
// each decode makes its own fixed zone; the free text the fast path leaves
// out is not compared.
func sameWire(a, b wireEvent) bool {
	noText := func(s *domain.TransactionState) {
		s.Currency, s.Source, s.Category, s.Description, s.BankReference = "", "", "", "", ""
	}
	noText(&b.Metadata.TransactionState)
	if b.Metadata.Previous != nil {
		p := *b.Metadata.Previous
		noText(&p)
		b.Metadata.Previous = &p
	}
	sameTime := func(x, y *time.Time) bool {
		_, ox := x.Zone()
		_, oy := y.Zone()
		ok := x.Equal(*y) && ox == oy && x.Location().String() == y.Location().String()
		*x, *y = time.Time{}, time.Time{}
		return ok
	}
	if !sameTime(&a.Timestamp, &b.Timestamp) || !sameTime(&a.Metadata.OccurredAt, &b.Metadata.OccurredAt) {
		return false
	}
	if (a.Metadata.Previous == nil) != (b.Metadata.Previous == nil) {
		return false
	}
	if a.Metadata.Previous != nil {
		pa, pb := *a.Metadata.Previous, *b.Metadata.Previous
		if !sameTime(&pa.OccurredAt, &pb.OccurredAt) || pa != pb {
			return false
		}
		a.Metadata.Previous, b.Metadata.Previous = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// BenchmarkDecode measures the projector's decoding of one message in the
// relay's form, fast path and encoding/json side by side.
//
//	go test -run '^$' -bench Decode -benchmem ./internal/reports/
func BenchmarkDecode(b *testing.B) {
	data := fastDecodeSeeds(b)[0]
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w wireEvent
			if err := json.Unmarshal(data, &w); err != nil {
				b.Fatal(err)
			}
			ev := domain.Event{ID: w.ID, Type: w.Type, OrgID: w.OrgID, PropertyID: w.PropertyID, EntityType: w.EntityType,
				AggregateVersion: w.AggregateVersion, Timestamp: w.Timestamp, Sequence: w.Sequence}
			if _, err := effects(ev, &w.Metadata); err != nil {
				b.Fatal(err)
			}
		}
	})
}
