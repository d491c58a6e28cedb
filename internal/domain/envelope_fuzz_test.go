package domain_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"hmp/internal/domain"
)

// FuzzEnvelope decodes any bytes as an event envelope and its metadata
// shapes: no panic, and whatever decodes encodes back to something that
// decodes to the same value (what the store, the bus and the history API
// pass along does not change on the way).
func FuzzEnvelope(f *testing.F) {
	id := domain.NewID(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ev := domain.Event{ID: id, Version: domain.EventVersion, Type: "revenue_added", OrgID: id, PropertyID: &id, UserID: id,
		EntityType: "revenue", EntityID: id, AggregateVersion: 1, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Metadata: json.RawMessage(`{"status":"approved","amountCents":5,"paymentMode":"cash","businessDate":"2026-01-02","affectedReportDates":["2026-01-02"]}`), Sequence: 3}
	b, _ := json.Marshal(ev)
	f.Add(b)
	for _, s := range []string{`{}`, `null`, `{"propertyId":null,"metadata":null}`, `{"eventId":"00000000-0000-0000-0000-00000000000g"}`,
		`{"timestamp":"2026-13-01T00:00:00Z"}`, `{"metadata":{"previous":{"businessDate":"0000-00-00"}}}`,
		`{"metadata":{"date":"2026-02-29","countedClosingCents":1e3}}`, `{"aggregateVersion":1e100}`, `{"metadata":"` + string(make([]byte, 10)) + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e domain.Event
		if json.Unmarshal(data, &e) == nil {
			roundTrip(t, e)
			var tm domain.TransactionMetadata
			if json.Unmarshal(e.Metadata, &tm) == nil {
				roundTrip(t, tm)
			}
			var cm domain.CashCountMetadata
			if json.Unmarshal(e.Metadata, &cm) == nil {
				roundTrip(t, cm)
			}
			var dm domain.DailyApprovalMetadata
			if json.Unmarshal(e.Metadata, &dm) == nil {
				roundTrip(t, dm)
			}
		}
	})
}

// roundTrip checks that v encodes to JSON that decodes and re-encodes to
// the same bytes.
func roundTrip[T any](t *testing.T, v T) {
	t.Helper()
	b1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode a decoded %T: %v", v, err)
	}
	var w T
	if err := json.Unmarshal(b1, &w); err != nil {
		t.Fatalf("decode an encoded %T %s: %v", v, b1, err)
	}
	b2, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("%T changes on the way:\n%s\n%s", v, b1, b2)
	}
}

// FuzzParse checks the wire forms a request can carry in a path, query or
// header: an id, a date, a consistency token. What parses prints back to
// the canonical form it came from (lower case for ids).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"01a22cf9-7c33-7d02-809d-207787197760", "01A22CF9-7C33-7D02-809D-207787197760", "2026-02-28", "2026-02-30",
		"0000-01-01", "c1.1", "c1.0", "c1.01", "c1.+5", "", "-", "2026-1-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := domain.ParseID(s); err == nil {
			if id2, err := domain.ParseID(id.String()); err != nil || id2 != id {
				t.Fatalf("id %q prints as %q, which parses to %v (%v)", s, id.String(), id2, err)
			}
		}
		if d, err := domain.ParseDate(s); err == nil {
			if d.String() != s {
				t.Fatalf("date %q prints as %q", s, d.String())
			}
		}
		if tok, err := domain.ParseToken(s); err == nil {
			if tok2, err := domain.ParseToken(tok.String()); err != nil || tok2 != tok || tok.TxID == 0 {
				t.Fatalf("token %q prints as %q", s, tok.String())
			}
		}
	})
}
