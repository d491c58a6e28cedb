package app_test

import (
	"testing"
)

// TestRowHistory: the audit trail of a row names who changed what, with
// each change's before and after; it outlives the row's deletion, and is
// visible exactly to those who may read the row.
func TestRowHistory(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := f.org.AdminToken
	other := f.env.Property(admin, "Unassigned", "")
	_, stranger := f.env.Manager(admin, "stranger@seaside.test", other)
	outsider := f.env.Signup("Outsiders")

	r := create(f.env, f.mgr, "expense", txn(f.prop, 1200))
	base := "/v1/finance/expenses/" + r.ID
	f.env.Must(200, "PATCH", base, f.mgr, map[string]any{"amountCents": 1500, "description": "mops"})
	f.env.Must(200, "POST", base+"/approve", admin, map[string]any{"notes": "fine"})
	f.env.Must(200, "PATCH", base, admin, map[string]any{"paymentMode": "bank"})

	type change struct {
		Field  string `json:"field"`
		Before any    `json:"before"`
		After  any    `json:"after"`
	}
	type entry struct {
		Version int             `json:"version"`
		Action  string          `json:"action"`
		UserID  string          `json:"userId"`
		Before  *map[string]any `json:"before"`
		After   *map[string]any `json:"after"`
		Changes []change        `json:"changes"`
		Notes   string          `json:"notes"`
	}
	history := func(token string) []entry {
		t.Helper()
		var out struct{ Items []entry }
		f.env.Must(200, "GET", base+"/history", token, nil).JSON(t, &out)
		return out.Items
	}
	fields := func(cs []change) map[string][2]any {
		m := map[string][2]any{}
		for _, c := range cs {
			m[c.Field] = [2]any{c.Before, c.After}
		}
		return m
	}
	h := history(f.mgr)
	if len(h) != 4 {
		t.Fatalf("history has %d entries, want 4: %+v", len(h), h)
	}
	want := []struct {
		action, user string
		changed      map[string][2]any
	}{
		{"added", f.mgrID, nil},
		{"updated", f.mgrID, map[string][2]any{"amountCents": {1200.0, 1500.0}, "description": {nil, "mops"}}},
		{"approved", f.org.AdminID, map[string][2]any{"status": {"pending", "approved"}}},
		{"updated", f.org.AdminID, map[string][2]any{"paymentMode": {"cash", "bank"}}},
	}
	for i, w := range want {
		e := h[i]
		if e.Version != i+1 || e.Action != w.action || e.UserID != w.user {
			t.Fatalf("entry %d = v%d %s by %s, want v%d %s by %s", i, e.Version, e.Action, e.UserID, i+1, w.action, w.user)
		}
		if i == 0 {
			if e.Before != nil || e.After == nil || (*e.After)["amountCents"] != 1200.0 {
				t.Fatalf("creation entry: %+v", e)
			}
			continue
		}
		got := fields(e.Changes)
		if len(got) != len(w.changed) {
			t.Fatalf("entry %d changes %v, want %v", i, got, w.changed)
		}
		for k, v := range w.changed {
			if got[k] != v {
				t.Fatalf("entry %d field %s: %v, want %v", i, k, got[k], v)
			}
		}
	}
	if h[2].Notes != "fine" {
		t.Fatalf("approval notes %q", h[2].Notes)
	}

	// Not readable, no trail: another tenant, a manager of another property.
	mustProblem(t, f.env.Do("GET", base+"/history", outsider.AdminToken, nil), 404)
	mustProblem(t, f.env.Do("GET", base+"/history", stranger, nil), 404)
	mustProblem(t, f.env.Do("GET", "/v1/finance/revenues/"+r.ID+"/history", admin, nil), 404)
	mustProblem(t, f.env.Do("GET", "/v1/finance/expenses/not-a-uuid/history", admin, nil), 422)

	// The trail outlives the row.
	f.env.Must(204, "DELETE", base, admin, nil)
	h = history(admin)
	last := h[len(h)-1]
	if len(h) != 5 || last.Action != "deleted" || last.After != nil || last.Before == nil || (*last.Before)["paymentMode"] != "bank" {
		t.Fatalf("after delete: %+v", h)
	}
}
