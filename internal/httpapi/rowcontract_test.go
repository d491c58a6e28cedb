package httpapi_test

import (
	"testing"

	"hmp/internal/domain"
)

// TestRowHTTPContract: how the edge renders the finance rules that
// internal/finance tests (workflow, If-Match, events, history): every
// single-row answer carries the row's version as ETag, a stale If-Match is
// 412 problem+json, a write answers a consistency token, an event has
// API.md's envelope, and a row's history is JSON with its changes.
func TestRowHTTPContract(t *testing.T) {
	t.Parallel()
	a := setup(t)
	a.clock.Set(baseTime)
	o := a.org("Sea Side Stays")
	admin, mgr := o.adminToken, a.login(o.managerEmail, managerPassword)

	var exp row
	r := a.must(201, "POST", rows("expense"), mgr, cash("expense", o.propertyID, 1200), &exp)
	if got := r.Header.Get("ETag"); got != `"1"` {
		t.Fatalf("create ETag = %q, want \"1\"", got)
	}
	base := rows("expense") + "/" + exp.ID
	if got := a.must(200, "GET", base, admin, nil, nil).Header.Get("ETag"); got != `"1"` {
		t.Fatalf("GET ETag = %q, want \"1\"", got)
	}
	if p := mustProblem(t, a.do("POST", base+"/approve", admin, map[string]any{}, "If-Match", `"2"`), 412); p.Detail == "" {
		t.Fatal("412 without a detail")
	}
	approved := a.must(200, "POST", base+"/approve", admin, map[string]any{"notes": "fine"}, nil, "If-Match", `"1"`)
	if got := approved.Header.Get("ETag"); got != `"2"` {
		t.Fatalf("approve ETag = %q, want \"2\"", got)
	}
	if tok := approved.Header.Get("X-Consistency-Token"); tok == "" {
		t.Fatalf("%s: no X-Consistency-Token header", approved)
	}
	// The event as the history API renders it (API.md's envelope).
	ev := a.lastEvent(admin, exp.ID)
	if _, err := domain.ParseID(ev.EventID); err != nil {
		t.Fatalf("eventId = %q, not a UUID", ev.EventID)
	}
	m := ev.Metadata
	if ev.EventVersion != "v1" || ev.EventType != "expense_approved" || ev.OrgID != o.id || ev.UserID != o.adminID ||
		ev.EntityType != "expense" || ev.EntityID != exp.ID || ev.AggregateVersion != 2 || ev.PropertyID == nil || *ev.PropertyID != o.propertyID ||
		!ev.Timestamp.Equal(baseTime) {
		t.Fatalf("envelope %+v", ev)
	}
	if m.Status != "approved" || m.AmountCents != 1200 || m.Currency != "INR" || m.PaymentMode != "cash" || m.BusinessDate != baseDate ||
		m.Category != "supplies" || m.PropertyID != o.propertyID || m.Notes != "fine" || len(m.AffectedReportDates) != 1 || m.AffectedReportDates[0] != baseDate ||
		m.Previous == nil || m.Previous.Status != "pending" || m.Previous.AmountCents != 1200 {
		t.Fatalf("metadata %s", ev.RawMetadata)
	}
	mustProblem(t, a.do("DELETE", base, admin, nil, "If-Match", `"1"`), 412)

	var h struct {
		Items []struct {
			Version int             `json:"version"`
			Action  string          `json:"action"`
			UserID  string          `json:"userId"`
			Before  *map[string]any `json:"before"`
			After   *map[string]any `json:"after"`
			Changes []struct {
				Field  string `json:"field"`
				Before any    `json:"before"`
				After  any    `json:"after"`
			} `json:"changes"`
			Notes string `json:"notes"`
		}
	}
	a.must(200, "GET", base+"/history", mgr, nil, &h)
	if len(h.Items) != 2 {
		t.Fatalf("history = %+v, want 2 entries", h)
	}
	add, approve := h.Items[0], h.Items[1]
	if add.Version != 1 || add.Action != "added" || add.UserID != o.managerID || add.Before != nil || add.After == nil || (*add.After)["amountCents"] != 1200.0 {
		t.Fatalf("creation entry: %+v", add)
	}
	if approve.Version != 2 || approve.Action != "approved" || approve.UserID != o.adminID || approve.Notes != "fine" ||
		len(approve.Changes) != 1 || approve.Changes[0].Field != "status" || approve.Changes[0].Before != "pending" || approve.Changes[0].After != "approved" {
		t.Fatalf("approval entry: %+v", approve)
	}
	mustProblem(t, a.do("GET", rows("expense")+"/not-a-uuid/history", admin, nil), 422)
}
