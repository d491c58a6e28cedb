package app_test

import (
	"testing"
)

// TestRowHTTPContract: how the edge renders the finance rules that
// internal/finance tests (workflow, If-Match, events, history): every
// single-row answer carries the row's version as ETag, a stale If-Match is
// 412 problem+json, a write answers a consistency token, an event has
// API.md's envelope, and a row's history is JSON with its changes.
func TestRowHTTPContract(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := f.org.AdminToken

	r := f.env.Must(201, "POST", "/v1/finance/expenses", f.mgr, withKind("expense", txn(f.prop, 1200)))
	if got := r.Header.Get("ETag"); got != `"1"` {
		t.Fatalf("create ETag = %q, want \"1\"", got)
	}
	var exp row
	r.JSON(t, &exp)
	base := "/v1/finance/expenses/" + exp.ID
	if got := f.env.Must(200, "GET", base, admin, nil).Header.Get("ETag"); got != `"1"` {
		t.Fatalf("GET ETag = %q, want \"1\"", got)
	}
	if p := mustProblem(t, f.env.Do("POST", base+"/approve", admin, map[string]any{}, "If-Match", `"2"`), 412); p.Detail == "" {
		t.Fatal("412 without a detail")
	}
	approved := f.env.Must(200, "POST", base+"/approve", admin, map[string]any{"notes": "fine"}, "If-Match", `"1"`)
	if got := approved.Header.Get("ETag"); got != `"2"` {
		t.Fatalf("approve ETag = %q, want \"2\"", got)
	}
	mustToken(t, approved)
	// The event as the history API renders it (API.md's envelope).
	ev := lastEvent(f.env, admin, exp.ID)
	mustUUID(t, "eventId", ev.EventID)
	m := ev.Metadata
	if ev.EventVersion != "v1" || ev.EventType != "expense_approved" || ev.OrgID != f.org.ID || ev.UserID != f.org.AdminID ||
		ev.EntityType != "expense" || ev.EntityID != exp.ID || ev.AggregateVersion != 2 || ev.PropertyID == nil || *ev.PropertyID != f.prop ||
		!ev.Timestamp.Equal(baseTime) {
		t.Fatalf("envelope %+v", ev)
	}
	if m.Status != "approved" || m.AmountCents != 1200 || m.Currency != "INR" || m.PaymentMode != "cash" || m.BusinessDate != today ||
		m.Category != "supplies" || m.PropertyID != f.prop || m.Notes != "fine" || len(m.AffectedReportDates) != 1 || m.AffectedReportDates[0] != today ||
		m.Previous == nil || m.Previous.Status != "pending" || m.Previous.AmountCents != 1200 {
		t.Fatalf("metadata %s", ev.RawMetadata)
	}
	mustProblem(t, f.env.Do("DELETE", base, admin, nil, "If-Match", `"1"`), 412)

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
	f.env.Must(200, "GET", base+"/history", f.mgr, nil).JSON(t, &h)
	if len(h.Items) != 2 {
		t.Fatalf("history = %+v, want 2 entries", h)
	}
	add, approve := h.Items[0], h.Items[1]
	if add.Version != 1 || add.Action != "added" || add.UserID != f.mgrID || add.Before != nil || add.After == nil || (*add.After)["amountCents"] != 1200.0 {
		t.Fatalf("creation entry: %+v", add)
	}
	if approve.Version != 2 || approve.Action != "approved" || approve.UserID != f.org.AdminID || approve.Notes != "fine" ||
		len(approve.Changes) != 1 || approve.Changes[0].Field != "status" || approve.Changes[0].Before != "pending" || approve.Changes[0].After != "approved" {
		t.Fatalf("approval entry: %+v", approve)
	}
	mustProblem(t, f.env.Do("GET", "/v1/finance/expenses/not-a-uuid/history", admin, nil), 422)
}
