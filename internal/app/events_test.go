package app_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"hmp/internal/apptest"
)

// TestEventPerStateChange follows a revenue and an expense through their
// whole life: every state change appends exactly one event with the
// envelope and metadata of API.md, versions 1, 2, 3, ... per entity.
func TestEventPerStateChange(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"revenue", "expense"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			admin := f.org.AdminToken
			base := "/v1/finance/" + plural(kind)
			la := f.env.Property(admin, "Venice Beach", "America/Los_Angeles")
			f.env.Must(200, "PUT", "/v1/users/"+f.mgrID+"/properties", admin, map[string]any{"propertyIds": []string{f.prop, la}})
			detail := map[string]string{"revenue": "room", "expense": "supplies"}[kind]

			type step struct {
				name   string
				do     func(id string) *apptest.Response
				status int
				actor  string
				// the event expected
				eventType string
				property  string
				state     state
				previous  *state
				affected  []string
				notes     string
			}
			pending := state{PropertyID: f.prop, Status: "pending", AmountCents: 5000, Currency: "INR", PaymentMode: "cash", BusinessDate: today}
			if kind == "revenue" {
				pending.Source = detail
			} else {
				pending.Category = detail
			}
			with := func(s state, mod func(*state)) state { mod(&s); return s }
			edited := with(pending, func(s *state) { s.AmountCents, s.Description = 5500, "two nights" })
			approved := with(edited, func(s *state) { s.Status = "approved" })
			moved := with(approved, func(s *state) { s.PropertyID, s.BusinessDate, s.PaymentMode = la, "2026-06-14", "bank" })
			backToPending := with(moved, func(s *state) { s.Status = "pending"; s.AmountCents = 5600 })
			rejected := with(backToPending, func(s *state) { s.Status = "rejected" })
			deleted := with(rejected, func(s *state) { s.Status = "deleted" })

			var id string
			steps := []step{
				{name: "a MANAGER adds", status: 201, actor: f.mgrID, eventType: kind + "_added", property: f.prop,
					do: func(string) *apptest.Response {
						return f.env.Do("POST", base, f.mgr, withKind(kind, txn(f.prop, 5000)))
					},
					state: pending, affected: []string{today}},
				{name: "the MANAGER edits", status: 200, actor: f.mgrID, eventType: kind + "_updated", property: f.prop,
					do: func(id string) *apptest.Response {
						return f.env.Do("PATCH", base+"/"+id, f.mgr, map[string]any{"amountCents": 5500, "description": "two nights"})
					},
					state: edited, previous: &pending, affected: []string{today}},
				{name: "an ADMIN approves", status: 200, actor: f.org.AdminID, eventType: kind + "_approved", property: f.prop,
					do: func(id string) *apptest.Response {
						return f.env.Do("POST", base+"/"+id+"/approve", admin, map[string]any{"notes": "receipt seen"})
					},
					state: approved, previous: &edited, affected: []string{today}, notes: "receipt seen"},
				{name: "the ADMIN moves it to Los Angeles and to the bank", status: 200, actor: f.org.AdminID, eventType: kind + "_updated", property: la,
					do: func(id string) *apptest.Response {
						return f.env.Do("PATCH", base+"/"+id, admin, map[string]any{"propertyId": la, "paymentMode": "bank"})
					},
					state: moved, previous: &approved, affected: []string{today, "2026-06-14"}},
				{name: "the MANAGER edits the approved row", status: 200, actor: f.mgrID, eventType: kind + "_updated", property: la,
					do: func(id string) *apptest.Response {
						return f.env.Do("PATCH", base+"/"+id, f.mgr, map[string]any{"amountCents": 5600})
					},
					state: backToPending, previous: &moved, affected: []string{"2026-06-14"}},
				{name: "the ADMIN rejects", status: 200, actor: f.org.AdminID, eventType: kind + "_rejected", property: la,
					do: func(id string) *apptest.Response {
						return f.env.Do("POST", base+"/"+id+"/reject", admin, nil)
					},
					state: rejected, previous: &backToPending, affected: []string{"2026-06-14"}},
				{name: "the ADMIN deletes", status: 204, actor: f.org.AdminID, eventType: kind + "_deleted", property: la,
					do: func(id string) *apptest.Response {
						return f.env.Do("DELETE", base+"/"+id, admin, nil)
					},
					state: deleted, previous: &rejected, affected: []string{"2026-06-14"}},
			}
			seen := map[string]bool{}
			for i, st := range steps {
				// Each step happens a minute after the previous one.
				f.clock.Set(baseTime.Add(time.Duration(i) * time.Minute))
				before := events(f.env, admin, "")
				r := st.do(id)
				if r.Status != st.status {
					t.Fatalf("%s: %s, want %d", st.name, r, st.status)
				}
				mustToken(t, r)
				if i == 0 {
					var created row
					r.JSON(t, &created)
					id = created.ID
				}
				after := events(f.env, admin, "")
				if len(after) != len(before)+1 {
					t.Fatalf("%s appended %d events, want 1", st.name, len(after)-len(before))
				}
				ev := after[len(after)-1]
				mustUUID(t, "eventId", ev.EventID)
				if seen[ev.EventID] {
					t.Fatalf("%s: event id %s reused", st.name, ev.EventID)
				}
				seen[ev.EventID] = true
				if ev.EventVersion != "v1" || ev.EventType != st.eventType || ev.OrgID != f.org.ID || ev.UserID != st.actor ||
					ev.EntityType != kind || ev.EntityID != id || ev.AggregateVersion != i+1 || ev.PropertyID == nil || *ev.PropertyID != st.property {
					t.Fatalf("%s: envelope %+v", st.name, ev)
				}
				if want := baseTime.Add(time.Duration(i) * time.Minute); !ev.Timestamp.Equal(want) {
					t.Fatalf("%s: timestamp %s, want %s", st.name, ev.Timestamp, want)
				}
				m := ev.Metadata
				if m.state != st.state {
					t.Fatalf("%s: metadata state %+v, want %+v", st.name, m.state, st.state)
				}
				if (m.Previous == nil) != (st.previous == nil) || (m.Previous != nil && *m.Previous != *st.previous) {
					t.Fatalf("%s: metadata.previous %+v, want %+v", st.name, m.Previous, st.previous)
				}
				if !slices.Equal(m.AffectedReportDates, st.affected) || m.Notes != st.notes {
					t.Fatalf("%s: affectedReportDates %q notes %q, want %q %q", st.name, m.AffectedReportDates, m.Notes, st.affected, st.notes)
				}
				// The row's version is its latest event's aggregate version.
				if st.eventType != kind+"_deleted" {
					if got := get(f.env, admin, kind, id); got.Version != ev.AggregateVersion || got.Status != st.state.Status {
						t.Fatalf("%s: row %+v after event v%d", st.name, got, ev.AggregateVersion)
					}
				}
			}

			// Requests that change nothing append nothing.
			before := events(f.env, admin, "")
			r := create(f.env, admin, kind, txn(f.prop, 1))
			after := events(f.env, admin, "")
			for _, c := range []struct {
				method, path string
				token        string
				body         any
			}{
				{"POST", base + "/" + r.ID + "/approve", admin, nil},                                  // 409: not pending
				{"POST", base + "/" + r.ID + "/approve", f.mgr, nil},                                  // 403
				{"PATCH", base + "/" + r.ID, admin, map[string]any{"amountCents": 0}},                 // 422
				{"PATCH", base + "/" + r.ID, admin, map[string]any{"amountCents": 1}},                 // no change
				{"GET", base + "/" + r.ID, f.mgr, nil},                                                // a read
				{"DELETE", base + "/" + r.ID, f.mgr, nil},                                             // a deletion request
				{"POST", base, f.mgr, withKind(kind, txn("01900000-0000-7000-8000-000000000000", 1))}, // 404
			} {
				f.env.Do(c.method, c.path, c.token, c.body)
			}
			if final := events(f.env, admin, ""); len(final) != len(before)+1 || len(after) != len(before)+1 {
				t.Fatalf("requests that changed nothing appended %d events", len(final)-len(after))
			}
		})
	}
}

// TestEventHistoryQueries: the history API filters by entity type, entity
// and property, is oldest first, and its cursor walks every event once.
func TestEventHistoryQueries(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := f.org.AdminToken
	second := f.env.Property(admin, "Hill Top", "")
	var revs, exps []row
	for i := range 4 {
		f.clock.Set(baseTime.Add(time.Duration(i) * time.Second))
		revs = append(revs, create(f.env, admin, "revenue", txn(f.prop, int64(100+i))))
		exps = append(exps, create(f.env, admin, "expense", txn(second, int64(200+i))))
	}
	f.env.Must(200, "PATCH", "/v1/finance/revenues/"+revs[0].ID, admin, map[string]any{"amountCents": 999})
	f.env.Must(201, "POST", "/v1/finance/daily-approvals", admin, map[string]any{"managerUserId": f.mgrID, "date": today})

	all := events(f.env, admin, "limit=1000")
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
		{"propertyId=" + f.prop + "&entityType=expense", 0, nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			f := f.in(t)
			got := events(f.env, admin, tc.query)
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
			f := f.in(t)
			paged := events(f.env, admin, fmt.Sprintf("limit=%d", size))
			if !slices.EqualFunc(paged, all, func(a, b event) bool { return a.EventID == b.EventID }) {
				t.Fatalf("pages of %d walk %d events differently from one page of %d", size, len(paged), len(all))
			}
		})
	}
	t.Run("a MANAGER reads the events of assigned properties", func(t *testing.T) {
		f := f.in(t)
		got := events(f.env, f.mgr, "")
		if len(got) != 5 {
			t.Fatalf("manager reads %d events, want the 5 of the assigned property", len(got))
		}
		for _, e := range got {
			if e.PropertyID == nil || *e.PropertyID != f.prop {
				t.Fatalf("manager reads %+v", e)
			}
		}
	})
}

// TestConcurrentWritesLoseNothing: concurrent changes of one row are
// serialized or refused with 409, never lost: the final version is the
// number of successful writes plus one, and each has its own event.
func TestConcurrentWritesLoseNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := f.org.AdminToken

	t.Run("patches", func(t *testing.T) {
		f := f.in(t)
		r := create(f.env, admin, "revenue", txn(f.prop, 1))
		const n = 16
		results := parallel(n, func(i int) (*apptest.Response, error) {
			token := admin
			if i%2 == 1 {
				token = f.mgr
			}
			return f.env.Send("PATCH", "/v1/finance/revenues/"+r.ID, token, map[string]any{"amountCents": 1000 + i})
		})
		byVersion := map[int]int64{}
		for i, res := range results {
			if res.err != nil {
				t.Fatalf("patch %d: %v", i, res.err)
			}
			switch res.r.Status {
			case 200:
				var got row
				res.r.JSON(t, &got)
				if got.AmountCents != int64(1000+i) {
					t.Fatalf("patch %d answered amount %d", i, got.AmountCents)
				}
				if _, dup := byVersion[got.Version]; dup {
					t.Fatalf("two successful writes answered version %d", got.Version)
				}
				byVersion[got.Version] = got.AmountCents
			case 409:
				mustProblem(t, res.r, 409)
			default:
				t.Fatalf("patch %d: %s, want 200 or 409", i, res.r)
			}
		}
		final := get(f.env, admin, "revenue", r.ID)
		if final.Version != len(byVersion)+1 {
			t.Fatalf("final version %d after %d successful writes, want %d", final.Version, len(byVersion), len(byVersion)+1)
		}
		if final.AmountCents != byVersion[final.Version] {
			t.Fatalf("final amount %d, but version %d wrote %d", final.AmountCents, final.Version, byVersion[final.Version])
		}
		evs := entityEvents(f.env, admin, r.ID)
		if len(evs) != len(byVersion)+1 {
			t.Fatalf("%d events for %d successful writes", len(evs), len(byVersion))
		}
		for i, ev := range evs {
			if ev.AggregateVersion != i+1 {
				t.Fatalf("event %d has version %d", i, ev.AggregateVersion)
			}
			if i == 0 {
				continue
			}
			if ev.EventType != "revenue_updated" || ev.Metadata.AmountCents != byVersion[i+1] || ev.Metadata.Previous.AmountCents != evs[i-1].Metadata.AmountCents {
				t.Fatalf("event v%d = %s, want the write answered as v%d (%d) on top of v%d", ev.AggregateVersion, ev.RawMetadata, i+1, byVersion[i+1], i)
			}
		}
		t.Logf("%d concurrent patches: %d written, %d refused", n, len(byVersion), n-len(byVersion))
	})

	t.Run("approve against reject", func(t *testing.T) {
		f := f.in(t)
		for round := range 5 {
			r := create(f.env, f.mgr, "expense", txn(f.prop, int64(round+1)))
			results := parallel(6, func(i int) (*apptest.Response, error) {
				verb := []string{"approve", "reject"}[i%2]
				return f.env.Send("POST", "/v1/finance/expenses/"+r.ID+"/"+verb, admin, map[string]any{})
			})
			wins := 0
			for _, res := range results {
				if res.err != nil {
					t.Fatal(res.err)
				}
				switch res.r.Status {
				case 200:
					wins++
				case 409:
				default:
					t.Fatalf("review: %s", res.r)
				}
			}
			evs := entityEvents(f.env, admin, r.ID)
			if wins != 1 || len(evs) != 2 {
				t.Fatalf("round %d: %d reviews won, %d events; want 1 and 2", round, wins, len(evs))
			}
		}
	})

	t.Run("deletion requests", func(t *testing.T) {
		f := f.in(t)
		for round := range 3 {
			r := create(f.env, admin, "expense", txn(f.prop, int64(round+1)))
			results := parallel(8, func(int) (*apptest.Response, error) {
				return f.env.Send("DELETE", "/v1/finance/expenses/"+r.ID, f.mgr, nil)
			})
			ids := map[string]bool{}
			for i, res := range results {
				if res.err != nil {
					t.Fatal(res.err)
				}
				if res.r.Status != 202 {
					t.Fatalf("round %d, request %d: %s, want 202", round, i, res.r)
				}
				var out struct {
					DeletionRequestID string `json:"deletionRequestId"`
				}
				res.r.JSON(t, &out)
				ids[out.DeletionRequestID] = true
			}
			if len(ids) != 1 {
				t.Fatalf("round %d: concurrent requests to delete one row made %d requests, want 1", round, len(ids))
			}
			for id := range ids {
				f.env.Must(200, "POST", "/v1/finance/deletion-requests/"+id+"/approve", admin, nil)
			}
			if evs := entityEvents(f.env, admin, r.ID); len(evs) != 2 || evs[1].EventType != "expense_deleted" {
				t.Fatalf("round %d: %d events", round, len(evs))
			}
		}
	})

	t.Run("daily approvals", func(t *testing.T) {
		f := f.in(t)
		results := parallel(8, func(int) (*apptest.Response, error) {
			return f.env.Send("POST", "/v1/finance/daily-approvals", admin, map[string]any{"managerUserId": f.mgrID, "date": "2026-06-20"})
		})
		granted := 0
		for _, res := range results {
			if res.err != nil {
				t.Fatal(res.err)
			}
			switch res.r.Status {
			case 201:
				granted++
			case 409:
				mustProblem(t, res.r, 409)
			default:
				t.Fatalf("grant: %s", res.r)
			}
		}
		if evs := events(f.env, admin, "entityType=daily_approval"); granted != 1 || len(evs) != 1 {
			t.Fatalf("%d grants answered 201, %d events; want 1 and 1", granted, len(evs))
		}
	})

	t.Run("delete against edit", func(t *testing.T) {
		f := f.in(t)
		r := create(f.env, admin, "revenue", txn(f.prop, 1))
		results := parallel(8, func(i int) (*apptest.Response, error) {
			if i == 0 {
				return f.env.Send("DELETE", "/v1/finance/revenues/"+r.ID, admin, nil)
			}
			return f.env.Send("PATCH", "/v1/finance/revenues/"+r.ID, admin, map[string]any{"amountCents": 10 + i})
		})
		edits := 0
		for i, res := range results {
			if res.err != nil {
				t.Fatal(res.err)
			}
			want := []int{200, 404, 409}
			if i == 0 {
				want = []int{204}
			}
			if !slices.Contains(want, res.r.Status) {
				t.Fatalf("request %d: %s, want one of %v", i, res.r, want)
			}
			if i > 0 && res.r.Status == 200 {
				edits++
			}
		}
		evs := entityEvents(f.env, admin, r.ID)
		last := evs[len(evs)-1]
		if len(evs) != edits+2 || last.EventType != "revenue_deleted" || last.AggregateVersion != edits+2 {
			t.Fatalf("%d edits before the delete, events %d, last %s v%d", edits, len(evs), last.EventType, last.AggregateVersion)
		}
	})
}

type result struct {
	r   *apptest.Response
	err error
}

// parallel runs n requests at once and returns their results by index.
func parallel(n int, req func(i int) (*apptest.Response, error)) []result {
	out := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i].r, out[i].err = req(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}
