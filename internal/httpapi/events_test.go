package httpapi_test

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestEventHistoryQueries: the history API filters by entity type, entity
// and property, is oldest first, and its cursor walks every event once.
func TestEventHistoryQueries(t *testing.T) {
	t.Parallel()
	a := setup(t)
	a.clock.Set(baseTime)
	o := a.org("Sea Side Stays")
	admin, mgr := o.adminToken, a.login(o.managerEmail, managerPassword)
	second := a.property(admin, "Hill Top")
	var revs, exps []row
	for i := range 4 {
		a.clock.Set(baseTime.Add(time.Duration(i) * time.Second))
		revs = append(revs, a.create(admin, "revenue", cash("revenue", o.propertyID, int64(100+i))))
		exps = append(exps, a.create(admin, "expense", cash("expense", second, int64(200+i))))
	}
	a.must(200, "PATCH", rows("revenue")+"/"+revs[0].ID, admin, map[string]any{"amountCents": 999}, nil)
	a.must(201, "POST", "/v1/finance/daily-approvals", admin, map[string]any{"managerUserId": o.managerID, "date": baseDate}, nil)

	all := a.events(admin, "limit=1000")
	if len(all) != 10 {
		t.Fatalf("%d events, want 10", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Timestamp.Before(all[i-1].Timestamp) {
			t.Fatalf("events not oldest first at %d", i)
		}
	}
	for _, tc := range []struct {
		query string
		want  int
		match func(event) bool
	}{
		{"entityType=revenue", 5, func(e event) bool { return e.EntityType == "revenue" }},
		{"entityType=expense", 4, func(e event) bool { return e.EntityType == "expense" }},
		{"entityType=daily_approval", 1, func(e event) bool { return e.EventType == "daily_approval_granted" && e.PropertyID == nil }},
		{"entityType=cash_balance", 0, nil},
		{"entityId=" + revs[0].ID, 2, func(e event) bool { return e.EntityID == revs[0].ID }},
		{"entityId=" + exps[1].ID, 1, func(e event) bool { return e.EntityID == exps[1].ID && e.EventType == "expense_added" }},
		{"entityType=expense&entityId=" + revs[1].ID, 0, nil},
		{"propertyId=" + second, 4, func(e event) bool { return *e.PropertyID == second }},
		{"propertyId=" + o.propertyID + "&entityType=expense", 0, nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			a := a.in(t)
			got := a.events(admin, tc.query)
			if len(got) != tc.want {
				t.Fatalf("%d events, want %d", len(got), tc.want)
			}
			for _, e := range got {
				if !tc.match(e) {
					t.Fatalf("event %+v does not match %q", e, tc.query)
				}
			}
		})
	}
	for _, size := range []int{1, 3, 7} {
		t.Run(fmt.Sprintf("pages of %d", size), func(t *testing.T) {
			a := a.in(t)
			paged := a.events(admin, fmt.Sprintf("limit=%d", size))
			if !slices.EqualFunc(paged, all, func(a, b event) bool { return a.EventID == b.EventID }) {
				t.Fatalf("pages of %d walk %d events differently from one page of %d", size, len(paged), len(all))
			}
		})
	}
	t.Run("a MANAGER reads the events of assigned properties", func(t *testing.T) {
		a := a.in(t)
		got := a.events(mgr, "")
		if len(got) != 5 {
			t.Fatalf("manager reads %d events, want the 5 of the assigned property", len(got))
		}
		for _, e := range got {
			if e.PropertyID == nil || *e.PropertyID != o.propertyID {
				t.Fatalf("manager reads %+v", e)
			}
		}
	})
}
