package app_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"hmp/internal/apptest"
)

// TestApprovalWorkflow walks the approval rules of API.md for revenues and
// expenses alike: who creates what status, what an edit does to the
// status, which transitions approve and reject allow, and who may review.
func TestApprovalWorkflow(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, kind := range []string{"revenue", "expense"} {
		base := "/v1/finance/" + plural(kind)
		t.Run(kind, func(t *testing.T) {
			f := f.in(t)
			admin, mgr := f.org.AdminToken, f.mgr

			t.Run("an ADMIN's row is approved at creation", func(t *testing.T) {
				f := f.in(t)
				r := f.env.Must(201, "POST", base, admin, withKind(kind, txn(f.prop, 5000)))
				mustToken(t, r)
				var got row
				r.JSON(t, &got)
				if got.Status != "approved" || got.Version != 1 || got.ReviewedBy != f.org.AdminID || got.CreatedBy != f.org.AdminID {
					t.Fatalf("admin row = %+v, want approved v1 reviewed and created by the admin", got)
				}
				if got.AmountCents != 5000 || got.Currency != "INR" || got.PaymentMode != "cash" || got.BusinessDate != today || got.PropertyID != f.prop {
					t.Fatalf("admin row = %+v", got)
				}
				if back := get(f.env, admin, kind, got.ID); back != got {
					t.Fatalf("read back %+v, want %+v", back, got)
				}
			})

			t.Run("a MANAGER's row is pending", func(t *testing.T) {
				f := f.in(t)
				got := create(f.env, mgr, kind, txn(f.prop, 5000))
				if got.Status != "pending" || got.ReviewedBy != "" || got.ReviewedAt != "" || got.CreatedBy != f.mgrID {
					t.Fatalf("manager row = %+v, want pending, unreviewed, created by the manager", got)
				}
			})

			t.Run("a MANAGER's edit of an approved row puts it back to pending", func(t *testing.T) {
				f := f.in(t)
				r := create(f.env, admin, kind, txn(f.prop, 5000))
				var got row
				p := f.env.Must(200, "PATCH", base+"/"+r.ID, mgr, map[string]any{"amountCents": 6000})
				mustToken(t, p)
				p.JSON(t, &got)
				if got.Status != "pending" || got.AmountCents != 6000 || got.Version != 2 || got.ReviewedBy != "" || got.UpdatedBy != f.mgrID {
					t.Fatalf("after manager edit = %+v, want pending v2 of 6000 updated by the manager", got)
				}
			})

			t.Run("an ADMIN's edit leaves the status as it was", func(t *testing.T) {
				f := f.in(t)
				for _, start := range []struct {
					token, status string
				}{{admin, "approved"}, {mgr, "pending"}} {
					r := create(f.env, start.token, kind, txn(f.prop, 5000))
					var got row
					f.env.Must(200, "PATCH", base+"/"+r.ID, admin, map[string]any{"amountCents": 7000, "description": "corrected"}).JSON(t, &got)
					if got.Status != start.status || got.AmountCents != 7000 || got.Description != "corrected" || got.Version != 2 {
						t.Fatalf("admin edit of a %s row = %+v, want %s v2", start.status, got, start.status)
					}
				}
			})

			t.Run("a MANAGER's edit of a pending row keeps it pending", func(t *testing.T) {
				f := f.in(t)
				r := create(f.env, mgr, kind, txn(f.prop, 5000))
				var got row
				f.env.Must(200, "PATCH", base+"/"+r.ID, mgr, map[string]any{"paymentMode": "bank"}).JSON(t, &got)
				if got.Status != "pending" || got.PaymentMode != "bank" || got.Version != 2 {
					t.Fatalf("after manager edit = %+v", got)
				}
			})

			t.Run("a rejected row cannot be edited", func(t *testing.T) {
				f := f.in(t)
				r := create(f.env, mgr, kind, txn(f.prop, 5000))
				f.env.Must(200, "POST", base+"/"+r.ID+"/reject", admin, map[string]any{"notes": "no receipt"})
				for _, token := range []string{admin, mgr} {
					p := mustProblem(t, f.env.Do("PATCH", base+"/"+r.ID, token, map[string]any{"amountCents": 1}), 409)
					if !strings.Contains(p.Detail, "rejected") {
						t.Fatalf("detail = %q, want it to say the row was rejected", p.Detail)
					}
				}
				if got := get(f.env, admin, kind, r.ID); got.Status != "rejected" || got.AmountCents != 5000 || got.Version != 2 {
					t.Fatalf("rejected row changed: %+v", got)
				}
			})

			t.Run("approve and reject change only pending rows", func(t *testing.T) {
				for _, tc := range []struct {
					name       string
					from       string // pending, approved or rejected
					verb       string
					wantStatus int
					wantRow    string
				}{
					{"pending approved", "pending", "approve", 200, "approved"},
					{"pending rejected", "pending", "reject", 200, "rejected"},
					{"approved approved again", "approved", "approve", 409, "approved"},
					{"approved rejected", "approved", "reject", 409, "approved"},
					{"rejected approved", "rejected", "approve", 409, "rejected"},
					{"rejected rejected again", "rejected", "reject", 409, "rejected"},
				} {
					t.Run(tc.name, func(t *testing.T) {
						f := f.in(t)
						var r row
						switch tc.from {
						case "approved":
							r = create(f.env, admin, kind, txn(f.prop, 5000))
						case "pending":
							r = create(f.env, mgr, kind, txn(f.prop, 5000))
						case "rejected":
							r = create(f.env, mgr, kind, txn(f.prop, 5000))
							f.env.Must(200, "POST", base+"/"+r.ID+"/reject", admin, nil)
							r = get(f.env, admin, kind, r.ID)
						}
						before := len(entityEvents(f.env, admin, r.ID))
						resp := f.env.Do("POST", base+"/"+r.ID+"/"+tc.verb, admin, map[string]any{"notes": "checked"})
						after := get(f.env, admin, kind, r.ID)
						if after.Status != tc.wantRow {
							t.Fatalf("status after %s = %q, want %q", tc.verb, after.Status, tc.wantRow)
						}
						evs := entityEvents(f.env, admin, r.ID)
						if tc.wantStatus != 200 {
							p := mustProblem(t, resp, tc.wantStatus)
							if !strings.Contains(p.Detail, "only a pending row") {
								t.Fatalf("detail = %q", p.Detail)
							}
							if after.Version != r.Version || len(evs) != before {
								t.Fatalf("a refused %s wrote: version %d -> %d, events %d -> %d", tc.verb, r.Version, after.Version, before, len(evs))
							}
							return
						}
						mustToken(t, resp)
						var got row
						resp.JSON(t, &got)
						if got != after || got.Version != 2 || got.ReviewedBy != f.org.AdminID || got.ReviewNotes != "checked" || got.ReviewedAt == "" {
							t.Fatalf("%s answered %+v, stored %+v", tc.verb, got, after)
						}
						if len(evs) != before+1 || evs[len(evs)-1].EventType != kind+"_"+tc.wantRow {
							t.Fatalf("events after %s: %d (was %d), last %+v", tc.verb, len(evs), before, evs[len(evs)-1])
						}
					})
				}
			})

			t.Run("a MANAGER may not approve or reject", func(t *testing.T) {
				f := f.in(t)
				r := create(f.env, mgr, kind, txn(f.prop, 5000))
				for _, verb := range []string{"approve", "reject"} {
					mustProblem(t, f.env.Do("POST", base+"/"+r.ID+"/"+verb, mgr, map[string]any{}), 403)
				}
				if got := get(f.env, admin, kind, r.ID); got.Status != "pending" || got.Version != 1 {
					t.Fatalf("row after refused reviews = %+v", got)
				}
			})

			t.Run("a MANAGER's delete asks an ADMIN", func(t *testing.T) {
				f := f.in(t)
				r := create(f.env, admin, kind, txn(f.prop, 5000))
				before := events(f.env, admin, "")
				d := f.env.Must(202, "DELETE", base+"/"+r.ID, mgr, nil)
				var req struct {
					DeletionRequestID string `json:"deletionRequestId"`
				}
				d.JSON(t, &req)
				mustUUID(t, "deletionRequestId", req.DeletionRequestID)
				if got := get(f.env, mgr, kind, r.ID); got != r {
					t.Fatalf("row after a manager's delete = %+v, want it unchanged %+v", got, r)
				}
				if after := events(f.env, admin, ""); len(after) != len(before) {
					t.Fatalf("a deletion request wrote %d events", len(after)-len(before))
				}
				// Asking twice returns the request already waiting.
				var again struct {
					DeletionRequestID string `json:"deletionRequestId"`
				}
				f.env.Must(202, "DELETE", base+"/"+r.ID, mgr, nil).JSON(t, &again)
				if again != req {
					t.Fatalf("second request = %v, want the first %v", again, req)
				}
				// Only an ADMIN decides.
				for _, verb := range []string{"approve", "reject"} {
					mustProblem(t, f.env.Do("POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/"+verb, mgr, nil), 403)
				}

				var dec struct{ ID, Status string }
				f.env.Must(200, "POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/approve", admin, nil).JSON(t, &dec)
				if dec.ID != req.DeletionRequestID || dec.Status != "approved" {
					t.Fatalf("decision = %+v", dec)
				}
				mustProblem(t, f.env.Do("GET", base+"/"+r.ID, admin, nil), 404)
				ev := lastEvent(f.env, admin, r.ID)
				if ev.EventType != kind+"_deleted" || ev.UserID != f.org.AdminID || ev.AggregateVersion != 2 {
					t.Fatalf("deletion event = %+v", ev)
				}
				m := ev.Metadata
				if m.Status != "deleted" || m.Previous == nil || m.Previous.Status != "approved" || m.Previous.AmountCents != 5000 ||
					m.Previous.BusinessDate != today || m.Previous.PaymentMode != "cash" || !slices.Equal(m.AffectedReportDates, []string{today}) {
					t.Fatalf("deletion metadata = %s", ev.RawMetadata)
				}
				// A decided request stays decided.
				mustProblem(t, f.env.Do("POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/approve", admin, nil), 409)
				mustProblem(t, f.env.Do("POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/reject", admin, nil), 409)
			})

			t.Run("a rejected deletion request keeps the row", func(t *testing.T) {
				f := f.in(t)
				r := create(f.env, mgr, kind, txn(f.prop, 5000))
				var req struct {
					DeletionRequestID string `json:"deletionRequestId"`
				}
				f.env.Must(202, "DELETE", base+"/"+r.ID, mgr, nil).JSON(t, &req)
				before := events(f.env, admin, "")
				var dec struct{ ID, Status string }
				f.env.Must(200, "POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/reject", admin, nil).JSON(t, &dec)
				if dec.ID != req.DeletionRequestID || dec.Status != "rejected" {
					t.Fatalf("decision = %+v", dec)
				}
				if got := get(f.env, admin, kind, r.ID); got != r {
					t.Fatalf("row after a rejected deletion = %+v, want %+v", got, r)
				}
				if after := events(f.env, admin, ""); len(after) != len(before) {
					t.Fatalf("rejecting a deletion request wrote %d events", len(after)-len(before))
				}
				mustProblem(t, f.env.Do("POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/approve", admin, nil), 409)
				// The manager may ask again; that is a new request.
				var again struct {
					DeletionRequestID string `json:"deletionRequestId"`
				}
				f.env.Must(202, "DELETE", base+"/"+r.ID, mgr, nil).JSON(t, &again)
				if again.DeletionRequestID == req.DeletionRequestID {
					t.Fatalf("a new request reused the rejected one's id")
				}
			})

			t.Run("an ADMIN's delete is immediate", func(t *testing.T) {
				f := f.in(t)
				r := create(f.env, mgr, kind, txn(f.prop, 5000))
				var req struct {
					DeletionRequestID string `json:"deletionRequestId"`
				}
				f.env.Must(202, "DELETE", base+"/"+r.ID, mgr, nil).JSON(t, &req)
				d := f.env.Must(204, "DELETE", base+"/"+r.ID, admin, nil)
				mustToken(t, d)
				if len(d.Body) != 0 {
					t.Fatalf("204 with a body: %q", d.Body)
				}
				mustProblem(t, f.env.Do("GET", base+"/"+r.ID, admin, nil), 404)
				mustProblem(t, f.env.Do("GET", base+"/"+r.ID, mgr, nil), 404)
				mustProblem(t, f.env.Do("DELETE", base+"/"+r.ID, admin, nil), 404)
				mustProblem(t, f.env.Do("PATCH", base+"/"+r.ID, admin, map[string]any{"amountCents": 1}), 404)
				ev := lastEvent(f.env, admin, r.ID)
				if ev.EventType != kind+"_deleted" || ev.Metadata.Status != "deleted" || ev.Metadata.Previous == nil || ev.Metadata.Previous.Status != "pending" {
					t.Fatalf("deletion event = %+v %s", ev, ev.RawMetadata)
				}
				// The manager's waiting request was settled by the delete.
				mustProblem(t, f.env.Do("POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/approve", admin, nil), 409)
			})

			t.Run("unknown rows and requests are 404", func(t *testing.T) {
				f := f.in(t)
				ghost := "01900000-0000-7000-8000-000000000000"
				for _, c := range []struct{ method, path string }{
					{"GET", base + "/" + ghost}, {"PATCH", base + "/" + ghost}, {"DELETE", base + "/" + ghost},
					{"POST", base + "/" + ghost + "/approve"}, {"POST", base + "/" + ghost + "/reject"},
					{"POST", "/v1/finance/deletion-requests/" + ghost + "/approve"},
					{"POST", "/v1/finance/deletion-requests/" + ghost + "/reject"},
				} {
					var body any
					if c.method == "PATCH" {
						body = map[string]any{"amountCents": 1}
					}
					mustProblem(t, f.env.Do(c.method, c.path, admin, body), 404)
				}
				// A revenue is not an expense, and the other way round.
				other := map[string]string{"revenue": "expense", "expense": "revenue"}[kind]
				r := create(f.env, admin, kind, txn(f.prop, 5000))
				mustProblem(t, f.env.Do("GET", "/v1/finance/"+plural(other)+"/"+r.ID, admin, nil), 404)
			})
		})
	}
}

// TestPatchMovesBusinessDate: moving a row to another time, property or
// payment mode recomputes its business date in the (new) property's zone,
// and the event carries the state before and every report date touched.
func TestPatchMovesBusinessDate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := f.org.AdminToken
	la := f.env.Property(admin, "Venice Beach", "America/Los_Angeles")
	kiri := f.env.Property(admin, "Christmas Island", "Pacific/Kiritimati")
	for _, tc := range []struct {
		name         string
		patch        map[string]any
		wantProperty string
		wantMode     string
		wantDate     string
		wantAffected []string
	}{
		{"another day", map[string]any{"occurredAt": "2026-06-10T04:30:00Z"}, f.prop, "cash", "2026-06-10", []string{today, "2026-06-10"}},
		{"late evening in India is the next day", map[string]any{"occurredAt": "2026-06-15T19:00:00Z"}, f.prop, "cash", "2026-06-16", []string{today, "2026-06-16"}},
		{"a property in Los Angeles, same instant", map[string]any{"propertyId": la}, la, "cash", "2026-06-14", []string{today, "2026-06-14"}},
		{"a property in Kiritimati, same instant, same date", map[string]any{"propertyId": kiri}, kiri, "cash", today, []string{today}},
		{"bank instead of cash", map[string]any{"paymentMode": "bank"}, f.prop, "bank", today, []string{today}},
		{"property, time and mode at once", map[string]any{"propertyId": la, "occurredAt": "2026-06-01T12:00:00Z", "paymentMode": "bank"}, la, "bank", "2026-06-01", []string{today, "2026-06-01"}},
	} {
		for _, kind := range []string{"revenue", "expense"} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				f := f.in(t)
				r := create(f.env, admin, kind, txn(f.prop, 5000))
				var got row
				p := f.env.Must(200, "PATCH", "/v1/finance/"+plural(kind)+"/"+r.ID, admin, tc.patch)
				mustToken(t, p)
				p.JSON(t, &got)
				if got.BusinessDate != tc.wantDate || got.PropertyID != tc.wantProperty || got.PaymentMode != tc.wantMode ||
					got.Status != "approved" || got.Version != 2 || got.AmountCents != 5000 {
					t.Fatalf("patched row = %+v, want %s at %s in %s", got, tc.wantMode, tc.wantDate, tc.wantProperty)
				}
				if back := get(f.env, admin, kind, r.ID); back != got {
					t.Fatalf("read back %+v, want %+v", back, got)
				}
				ev := lastEvent(f.env, admin, r.ID)
				m := ev.Metadata
				if ev.EventType != kind+"_updated" || ev.AggregateVersion != 2 || ev.PropertyID == nil || *ev.PropertyID != tc.wantProperty {
					t.Fatalf("event = %+v", ev)
				}
				if m.BusinessDate != tc.wantDate || m.PropertyID != tc.wantProperty || m.PaymentMode != tc.wantMode || m.Status != "approved" {
					t.Fatalf("metadata = %s", ev.RawMetadata)
				}
				if m.Previous == nil || m.Previous.BusinessDate != today || m.Previous.PropertyID != f.prop || m.Previous.PaymentMode != "cash" || m.Previous.AmountCents != 5000 {
					t.Fatalf("metadata.previous = %s", ev.RawMetadata)
				}
				if !slices.Equal(m.AffectedReportDates, tc.wantAffected) {
					t.Fatalf("affectedReportDates = %q, want %q", m.AffectedReportDates, tc.wantAffected)
				}
			})
		}
	}

	t.Run("a patch that changes nothing writes nothing", func(t *testing.T) {
		f := f.in(t)
		r := create(f.env, admin, "revenue", txn(f.prop, 5000))
		var got row
		f.env.Must(200, "PATCH", "/v1/finance/revenues/"+r.ID, admin, map[string]any{"amountCents": 5000, "occurredAt": morning}).JSON(t, &got)
		if got != r {
			t.Fatalf("no-op patch answered %+v, want %+v", got, r)
		}
		if evs := entityEvents(f.env, admin, r.ID); len(evs) != 1 {
			t.Fatalf("no-op patch wrote events: %d", len(evs))
		}
	})
}

// TestDailyApprovalGate: a MANAGER with a pending row created on an earlier
// day (in that row's property zone) may not add rows until an ADMIN
// reviews the old rows or grants a daily approval for today (in the zone
// of the property written to).
func TestDailyApprovalGate(t *testing.T) {
	t.Parallel()

	t.Run("a pending row from yesterday blocks, a daily approval for today lets through", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		create(f.env, f.mgr, "revenue", txn(f.prop, 1000))
		create(f.env, f.mgr, "expense", txn(f.prop, 1000)) // same day: no gate
		f.advance(24 * time.Hour)                          // tomorrow, 2026-06-16
		admin := f.org.AdminToken
		before := events(f.env, admin, "")
		next := apptest.Txn{PropertyID: f.prop, AmountCents: 2000, PaymentMode: "cash", OccurredAt: "2026-06-16T04:30:00Z"}
		for _, kind := range []string{"revenue", "expense"} {
			p := mustProblem(t, f.env.Do("POST", "/v1/finance/"+plural(kind), f.mgr, withKind(kind, next)), 409)
			if !strings.Contains(p.Detail, "pending approval created on "+today) || !strings.Contains(p.Detail, "daily approval for 2026-06-16") {
				t.Fatalf("gate detail = %q, want it to name the pending day and today", p.Detail)
			}
		}
		if after := events(f.env, admin, ""); len(after) != len(before) {
			t.Fatalf("a refused create wrote %d events", len(after)-len(before))
		}
		// The ADMIN is never gated.
		create(f.env, admin, "revenue", next)

		var grant struct {
			ID, ManagerUserID, Date, GrantedBy string
		}
		g := f.env.Must(201, "POST", "/v1/finance/daily-approvals", admin, map[string]any{"managerUserId": f.mgrID, "date": "2026-06-16"})
		mustToken(t, g)
		g.JSON(t, &grant)
		mustUUID(t, "daily approval id", grant.ID)
		if grant.ManagerUserID != f.mgrID || grant.Date != "2026-06-16" || grant.GrantedBy != f.org.AdminID {
			t.Fatalf("grant = %+v", grant)
		}
		ev := lastEvent(f.env, admin, grant.ID)
		if ev.EventType != "daily_approval_granted" || ev.EntityType != "daily_approval" || ev.AggregateVersion != 1 ||
			ev.UserID != f.org.AdminID || ev.Metadata.ManagerUserID != f.mgrID || ev.Metadata.Date != "2026-06-16" {
			t.Fatalf("grant event = %+v %s", ev, ev.RawMetadata)
		}
		for _, kind := range []string{"revenue", "expense"} {
			if got := create(f.env, f.mgr, kind, next); got.Status != "pending" {
				t.Fatalf("created after the grant: %+v", got)
			}
		}
		// The same grant twice is a conflict; a MANAGER may not grant.
		mustProblem(t, f.env.Do("POST", "/v1/finance/daily-approvals", admin, map[string]any{"managerUserId": f.mgrID, "date": "2026-06-16"}), 409)
		mustProblem(t, f.env.Do("POST", "/v1/finance/daily-approvals", f.mgr, map[string]any{"managerUserId": f.mgrID, "date": "2026-06-17"}), 403)

		// The grant is for one day only.
		f.advance(24 * time.Hour)
		mustProblem(t, f.env.Do("POST", "/v1/finance/revenues", f.mgr, withKind("revenue", next)), 409)
	})

	t.Run("reviewing the old rows lifts the gate", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		a := create(f.env, f.mgr, "revenue", txn(f.prop, 1000))
		b := create(f.env, f.mgr, "expense", txn(f.prop, 1000))
		f.advance(24 * time.Hour)
		admin := f.org.AdminToken
		mustProblem(t, f.env.Do("POST", "/v1/finance/revenues", f.mgr, withKind("revenue", txn(f.prop, 1))), 409)
		f.env.Must(200, "POST", "/v1/finance/revenues/"+a.ID+"/approve", admin, nil)
		mustProblem(t, f.env.Do("POST", "/v1/finance/revenues", f.mgr, withKind("revenue", txn(f.prop, 1))), 409)
		f.env.Must(200, "POST", "/v1/finance/expenses/"+b.ID+"/reject", admin, nil)
		create(f.env, f.mgr, "revenue", txn(f.prop, 1))
	})

	t.Run("property access is checked before the gate", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		other := f.env.Property(f.org.AdminToken, "Not Theirs", "")
		create(f.env, f.mgr, "revenue", txn(f.prop, 1000))
		f.advance(24 * time.Hour)
		p := mustProblem(t, f.env.Do("POST", "/v1/finance/revenues", f.mgr, withKind("revenue", txn(other, 1))), 404)
		mustLocations(t, p, "body.propertyId")
	})

	t.Run("days are taken in each property's zone", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		admin := f.org.AdminToken
		// 06:30 UTC on 2026-06-15: 23:30 of the 14th in Los Angeles, noon of
		// the 15th in Kolkata, 20:30 of the 15th in Kiritimati.
		la := f.env.Property(admin, "Venice Beach", "America/Los_Angeles")
		kiri := f.env.Property(admin, "Christmas Island", "Pacific/Kiritimati")
		f.env.Must(200, "PUT", "/v1/users/"+f.mgrID+"/properties", admin, map[string]any{"propertyIds": []string{f.prop, la, kiri}})
		create(f.env, f.mgr, "revenue", txn(la, 1000)) // created on the 14th, LA time
		create(f.env, f.mgr, "revenue", txn(f.prop, 1000))

		// One hour later it is the 15th in Los Angeles: the LA row is from
		// an earlier day there, although in UTC and in Kolkata both rows
		// were created today.
		f.clock.Advance(time.Hour)
		p := mustProblem(t, f.env.Do("POST", "/v1/finance/revenues", f.mgr, withKind("revenue", txn(f.prop, 1))), 409)
		if !strings.Contains(p.Detail, "created on 2026-06-14") || !strings.Contains(p.Detail, "daily approval for 2026-06-15") {
			t.Fatalf("gate detail = %q", p.Detail)
		}
		f.env.Must(201, "POST", "/v1/finance/daily-approvals", admin, map[string]any{"managerUserId": f.mgrID, "date": "2026-06-15"})
		create(f.env, f.mgr, "revenue", txn(f.prop, 1))
		create(f.env, f.mgr, "revenue", txn(la, 1))

		// At 10:30 UTC it is already the 16th in Kiritimati (still the
		// 15th in Kolkata): the grant for the 15th covers Kolkata, not
		// Kiritimati.
		f.clock.Set(baseTime.Add(4 * time.Hour))
		create(f.env, f.mgr, "revenue", txn(f.prop, 1))
		p = mustProblem(t, f.env.Do("POST", "/v1/finance/revenues", f.mgr, withKind("revenue", txn(kiri, 1))), 409)
		if !strings.Contains(p.Detail, "daily approval for 2026-06-16") {
			t.Fatalf("gate detail = %q, want today in Kiritimati", p.Detail)
		}
		f.env.Must(201, "POST", "/v1/finance/daily-approvals", admin, map[string]any{"managerUserId": f.mgrID, "date": "2026-06-16"})
		if got := create(f.env, f.mgr, "revenue", txn(kiri, 1)); got.BusinessDate != today {
			t.Fatalf("Kiritimati row = %+v", got)
		}
	})
}

// TestListRevenuesAndExpenses: filters, order (newest business date
// first) and cursor paging of the list endpoints.
func TestListRevenuesAndExpenses(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := f.org.AdminToken
	second := f.env.Property(admin, "Hill Top", "")

	type seed struct {
		prop   string
		day    int // of June 2026
		status string
	}
	seeds := []seed{
		{f.prop, 1, "approved"}, {f.prop, 3, "pending"}, {f.prop, 3, "approved"}, {f.prop, 5, "rejected"},
		{f.prop, 7, "approved"}, {f.prop, 7, "pending"}, {f.prop, 7, "approved"}, {f.prop, 9, "approved"},
		{second, 2, "approved"}, {second, 3, "approved"}, {second, 8, "approved"}, {second, 10, "approved"},
	}
	// Both kinds are seeded before either is listed: each list must show
	// its own kind only.
	seeded := map[string]map[string]seed{}
	for _, kind := range []string{"revenue", "expense"} {
		seeded[kind] = map[string]seed{}
		for i, s := range seeds {
			body := apptest.Txn{PropertyID: s.prop, AmountCents: int64(100 + i), PaymentMode: "cash",
				OccurredAt: fmt.Sprintf("2026-06-%02dT04:30:00Z", s.day)}
			var r row
			if s.status == "approved" {
				r = create(f.env, admin, kind, body)
			} else {
				r = create(f.env, f.mgr, kind, body)
			}
			if s.status == "rejected" {
				f.env.Must(200, "POST", "/v1/finance/"+plural(kind)+"/"+r.ID+"/reject", admin, nil)
			}
			seeded[kind][r.ID] = s
		}
	}
	for _, kind := range []string{"revenue", "expense"} {
		byID := seeded[kind]
		t.Run(kind, func(t *testing.T) {
			f := f.in(t)
			for _, tc := range []struct {
				query string
				keep  func(s seed) bool
			}{
				{"", func(seed) bool { return true }},
				{"propertyId=" + f.prop, func(s seed) bool { return s.prop == f.prop }},
				{"propertyId=" + second, func(s seed) bool { return s.prop == second }},
				{"startDate=2026-06-03", func(s seed) bool { return s.day >= 3 }},
				{"endDate=2026-06-07", func(s seed) bool { return s.day <= 7 }},
				{"startDate=2026-06-03&endDate=2026-06-07", func(s seed) bool { return s.day >= 3 && s.day <= 7 }},
				{"startDate=2026-06-07&endDate=2026-06-07", func(s seed) bool { return s.day == 7 }},
				{"status=pending", func(s seed) bool { return s.status == "pending" }},
				{"status=approved", func(s seed) bool { return s.status == "approved" }},
				{"status=rejected", func(s seed) bool { return s.status == "rejected" }},
				{"propertyId=" + f.prop + "&status=approved&startDate=2026-06-02&endDate=2026-06-08",
					func(s seed) bool { return s.prop == f.prop && s.status == "approved" && s.day >= 2 && s.day <= 8 }},
				{"startDate=2026-07-01", func(seed) bool { return false }},
			} {
				t.Run("filter "+tc.query, func(t *testing.T) {
					f := f.in(t)
					want := 0
					for _, s := range seeds {
						if tc.keep(s) {
							want++
						}
					}
					// One page, then pages of every size: the same rows in the
					// same order, each exactly once.
					all := list(f.env, admin, kind, joinQuery(tc.query, "limit=500"))
					if len(all) != want {
						t.Fatalf("%d rows, want %d", len(all), want)
					}
					for i, r := range all {
						s, ok := byID[r.ID]
						if !ok {
							t.Fatalf("row %s (%s) is not one of the %ss seeded", r.ID, r.BusinessDate, kind)
						}
						if !tc.keep(s) || r.Status != s.status {
							t.Fatalf("row %+v does not match filter %q", r, tc.query)
						}
						if i > 0 && all[i-1].BusinessDate < r.BusinessDate {
							t.Fatalf("rows not newest business date first: %s before %s", all[i-1].BusinessDate, r.BusinessDate)
						}
					}
					for _, size := range []int{1, 2, 5} {
						paged := list(f.env, admin, kind, joinQuery(tc.query, fmt.Sprintf("limit=%d", size)))
						if !slices.EqualFunc(paged, all, func(a, b row) bool { return a.ID == b.ID }) {
							t.Fatalf("pages of %d walk %d rows differently from one page of %d", size, len(paged), len(all))
						}
					}
				})
			}
			t.Run("a MANAGER sees the assigned properties only", func(t *testing.T) {
				f := f.in(t)
				rows := list(f.env, f.mgr, kind, "limit=3")
				for _, r := range rows {
					if r.PropertyID != f.prop {
						t.Fatalf("manager sees a row of an unassigned property: %+v", r)
					}
				}
				if len(rows) != 8 {
					t.Fatalf("manager sees %d rows, want the 8 of the assigned property", len(rows))
				}
				mustLocations(t, mustProblem(t, f.env.Do("GET", "/v1/finance/"+plural(kind)+"?propertyId="+second, f.mgr, nil), 404), "query.propertyId")
			})

			t.Run("a first page says where the next starts", func(t *testing.T) {
				f := f.in(t)
				var page struct {
					Items      []row   `json:"items"`
					NextCursor *string `json:"nextCursor"`
				}
				f.env.Must(200, "GET", "/v1/finance/"+plural(kind)+"?limit=12", admin, nil).JSON(t, &page)
				if len(page.Items) != 12 || page.NextCursor != nil {
					t.Fatalf("exactly 12 rows on a page of 12: %d rows, next %v", len(page.Items), page.NextCursor)
				}
				f.env.Must(200, "GET", "/v1/finance/"+plural(kind)+"?limit=11", admin, nil).JSON(t, &page)
				if len(page.Items) != 11 || page.NextCursor == nil {
					t.Fatalf("11 of 12 rows: %d rows, next %v", len(page.Items), page.NextCursor)
				}
			})
		})
	}
}
