package httpapi_test

import (
	"encoding/json"
	"net/url"
	"time"

	"hmp/internal/httpapi/httpapitest"
)

// baseTime is where a test that freezes the fixture's clock sets it: 12:00
// in Kolkata, the default zone, so that baseDate is "today" in India and in
// UTC alike.
var baseTime = time.Date(2026, 6, 15, 6, 30, 0, 0, time.UTC)

// baseDate is the business date of baseTime in the default zone.
const baseDate = "2026-06-15"

// morning is an occurredAt on baseDate: 10:00 in Kolkata.
const morning = "2026-06-15T04:30:00Z"

// txn is the body of a revenue or expense create.
type txn = httpapitest.Txn

// cash is a valid create body of kind (revenue or expense): a cash room
// revenue (or supplies expense) of amount on the morning of baseDate.
func cash(kind, prop string, amount int64) txn {
	return httpapitest.WithKind(kind, txn{PropertyID: prop, AmountCents: amount, PaymentMode: "cash", OccurredAt: morning})
}

// row is a revenue or an expense as the API returns it, with every field.
type row = httpapitest.Row

// rows is the route of kind's rows.
func rows(kind string) string { return "/v1/finance/" + kind + "s" }

// create posts a row of kind and returns it.
func (a *api) create(token, kind string, body txn) row {
	a.t.Helper()
	var r row
	a.must(201, "POST", rows(kind), token, body, &r)
	return r
}

// get reads one row.
func (a *api) get(token, kind, id string) row {
	a.t.Helper()
	var r row
	a.must(200, "GET", rows(kind)+"/"+id, token, nil, &r)
	return r
}

// list walks every page of kind's list (query without the leading "?")
// and returns all rows in the order served.
func (a *api) list(token, kind, query string) []row {
	a.t.Helper()
	var all []row
	a.pages(rows(kind), token, query, func(raw []byte) *string {
		var out struct {
			Items      []row   `json:"items"`
			NextCursor *string `json:"nextCursor"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			a.t.Fatalf("list %s: %v in %s", kind, err, raw)
		}
		all = append(all, out.Items...)
		return out.NextCursor
	})
	return all
}

// count returns how many rows of kind carry amount.
func (a *api) count(token, kind string, amount int64) int {
	a.t.Helper()
	n := 0
	for _, r := range a.list(token, kind, "limit=500") {
		if r.AmountCents == amount {
			n++
		}
	}
	return n
}

// state is a row's state as event metadata carries it.
type state struct {
	PropertyID    string `json:"propertyId"`
	Status        string `json:"status"`
	AmountCents   int64  `json:"amountCents"`
	Currency      string `json:"currency"`
	PaymentMode   string `json:"paymentMode"`
	BusinessDate  string `json:"businessDate"`
	Source        string `json:"source"`
	Category      string `json:"category"`
	Description   string `json:"description"`
	BankReference string `json:"bankReference"`
}

type metadata struct {
	state
	Previous            *state   `json:"previous"`
	AffectedReportDates []string `json:"affectedReportDates"`
	Notes               string   `json:"notes"`
}

// event is one envelope of the history API.
type event struct {
	EventID          string          `json:"eventId"`
	EventVersion     string          `json:"eventVersion"`
	EventType        string          `json:"eventType"`
	OrgID            string          `json:"orgId"`
	PropertyID       *string         `json:"propertyId"`
	UserID           string          `json:"userId"`
	EntityType       string          `json:"entityType"`
	EntityID         string          `json:"entityId"`
	AggregateVersion int             `json:"aggregateVersion"`
	Timestamp        time.Time       `json:"timestamp"`
	RawMetadata      json.RawMessage `json:"metadata"`
	Metadata         metadata        `json:"-"`
}

// events walks every page of the history (query without the leading "?").
func (a *api) events(token, query string) []event {
	a.t.Helper()
	var all []event
	a.pages("/v1/finance/events", token, query, func(raw []byte) *string {
		var out struct {
			Items      []event `json:"items"`
			NextCursor *string `json:"nextCursor"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			a.t.Fatalf("events: %v in %s", err, raw)
		}
		for i := range out.Items {
			if err := json.Unmarshal(out.Items[i].RawMetadata, &out.Items[i].Metadata); err != nil {
				a.t.Fatalf("event %s metadata %s: %v", out.Items[i].EventID, out.Items[i].RawMetadata, err)
			}
		}
		all = append(all, out.Items...)
		return out.NextCursor
	})
	return all
}

// entityEvents returns the history of one entity.
func (a *api) entityEvents(token, id string) []event {
	a.t.Helper()
	return a.events(token, "entityId="+id)
}

// lastEvent returns the newest event of one entity.
func (a *api) lastEvent(token, id string) event {
	a.t.Helper()
	evs := a.entityEvents(token, id)
	if len(evs) == 0 {
		a.t.Fatalf("no events for entity %s", id)
	}
	return evs[len(evs)-1]
}

// pages GETs path?query and then each next page, handing every body to
// page, which returns the next cursor (nil: the last page).
func (a *api) pages(path, token, query string, page func(body []byte) *string) {
	a.t.Helper()
	cursor := ""
	for n := 0; ; n++ {
		if n > 1000 {
			a.t.Fatalf("%s?%s: paging does not end", path, query)
		}
		q := query
		if cursor != "" {
			if q != "" {
				q += "&"
			}
			q += "cursor=" + url.QueryEscape(cursor)
		}
		next := page(a.must(200, "GET", path+"?"+q, token, nil, nil).Body)
		if next == nil {
			return
		}
		cursor = *next
	}
}
