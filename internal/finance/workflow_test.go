package finance_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"hmp/internal/domain"
	"hmp/internal/domain/domaintest"
	"hmp/internal/finance"
)

// TestApprovalWorkflow walks the approval rules of API.md for revenues and
// expenses alike: who creates what status, what an edit does to the
// status, which transitions approve and reject allow, and who may review.
func TestApprovalWorkflow(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			admin, mgr := f.admin, f.mgr

			t.Run("an ADMIN's row is approved at creation", func(t *testing.T) {
				got := f.create(t, admin, kind, input(kind, f.prop, 5000))
				if got.Status != domain.Approved || got.Version != 1 || got.ReviewedBy == nil || *got.ReviewedBy != admin.UserID ||
					got.ReviewedAt == nil || got.CreatedBy != admin.UserID {
					t.Fatalf("admin row = %+v, want approved v1 reviewed and created by the admin", got)
				}
				if got.AmountCents != 5000 || got.Currency != "INR" || got.PaymentMode != domain.Cash || got.BusinessDate != today || got.PropertyID != f.prop {
					t.Fatalf("admin row = %+v", got)
				}
				if back := f.get(t, kind, got.ID); !same(back, got) {
					t.Fatalf("read back %+v, want %+v", back, got)
				}
			})

			t.Run("a MANAGER's row is pending", func(t *testing.T) {
				got := f.create(t, mgr, kind, input(kind, f.prop, 5000))
				if got.Status != domain.Pending || got.ReviewedBy != nil || got.ReviewedAt != nil || got.CreatedBy != mgr.UserID {
					t.Fatalf("manager row = %+v, want pending, unreviewed, created by the manager", got)
				}
			})

			t.Run("a MANAGER's edit of an approved row puts it back to pending", func(t *testing.T) {
				r := f.create(t, admin, kind, input(kind, f.prop, 5000))
				got, w, err := f.fin.Update(t.Context(), mgr, kind, r.ID, finance.PatchInput{AmountCents: ptr(int64(6000))})
				if err != nil {
					t.Fatal(err)
				}
				if w.Token.TxID == 0 {
					t.Fatal("an edit without a consistency token")
				}
				if got.Status != domain.Pending || got.AmountCents != 6000 || got.Version != 2 || got.ReviewedBy != nil || got.UpdatedBy != mgr.UserID {
					t.Fatalf("after manager edit = %+v, want pending v2 of 6000 updated by the manager", got)
				}
			})

			t.Run("an ADMIN's edit leaves the status as it was", func(t *testing.T) {
				for _, start := range []struct {
					actor  domain.Actor
					status domain.Status
				}{{admin, domain.Approved}, {mgr, domain.Pending}} {
					r := f.create(t, start.actor, kind, input(kind, f.prop, 5000))
					got, _, err := f.fin.Update(t.Context(), admin, kind, r.ID, finance.PatchInput{AmountCents: ptr(int64(7000)), Description: ptr("corrected")})
					if err != nil {
						t.Fatal(err)
					}
					if got.Status != start.status || got.AmountCents != 7000 || got.Description != "corrected" || got.Version != 2 {
						t.Fatalf("admin edit of a %s row = %+v, want %s v2", start.status, got, start.status)
					}
				}
			})

			t.Run("a MANAGER's edit of a pending row keeps it pending", func(t *testing.T) {
				r := f.create(t, mgr, kind, input(kind, f.prop, 5000))
				got, _, err := f.fin.Update(t.Context(), mgr, kind, r.ID, finance.PatchInput{PaymentMode: ptr(domain.Bank)})
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != domain.Pending || got.PaymentMode != domain.Bank || got.Version != 2 {
					t.Fatalf("after manager edit = %+v", got)
				}
			})

			t.Run("a rejected row cannot be edited", func(t *testing.T) {
				r := f.create(t, mgr, kind, input(kind, f.prop, 5000))
				if _, _, err := f.fin.Review(t.Context(), admin, kind, r.ID, false, "no receipt"); err != nil {
					t.Fatal(err)
				}
				for _, actor := range []domain.Actor{admin, mgr} {
					_, _, err := f.fin.Update(t.Context(), actor, kind, r.ID, finance.PatchInput{AmountCents: ptr(int64(1))})
					domaintest.MustErr(t, err, domain.ErrConflict, "rejected")
				}
				if got := f.get(t, kind, r.ID); got.Status != domain.Rejected || got.AmountCents != 5000 || got.Version != 2 {
					t.Fatalf("rejected row changed: %+v", got)
				}
			})

			t.Run("approve and reject change only pending rows", func(t *testing.T) {
				for _, tc := range []struct {
					name    string
					from    domain.Status
					approve bool
					ok      bool
					wantRow domain.Status
				}{
					{"pending approved", domain.Pending, true, true, domain.Approved},
					{"pending rejected", domain.Pending, false, true, domain.Rejected},
					{"approved approved again", domain.Approved, true, false, domain.Approved},
					{"approved rejected", domain.Approved, false, false, domain.Approved},
					{"rejected approved", domain.Rejected, true, false, domain.Rejected},
					{"rejected rejected again", domain.Rejected, false, false, domain.Rejected},
				} {
					t.Run(tc.name, func(t *testing.T) {
						var r finance.Transaction
						switch tc.from {
						case domain.Approved:
							r = f.create(t, admin, kind, input(kind, f.prop, 5000))
						case domain.Pending:
							r = f.create(t, mgr, kind, input(kind, f.prop, 5000))
						case domain.Rejected:
							r = f.create(t, mgr, kind, input(kind, f.prop, 5000))
							if _, _, err := f.fin.Review(t.Context(), admin, kind, r.ID, false, ""); err != nil {
								t.Fatal(err)
							}
							r = f.get(t, kind, r.ID)
						}
						before := len(f.events(t, kind, r.ID))
						got, w, err := f.fin.Review(t.Context(), admin, kind, r.ID, tc.approve, "checked")
						after := f.get(t, kind, r.ID)
						if after.Status != tc.wantRow {
							t.Fatalf("status after review = %q, want %q", after.Status, tc.wantRow)
						}
						evs := f.events(t, kind, r.ID)
						if !tc.ok {
							domaintest.MustErr(t, err, domain.ErrConflict, "only a pending row")
							if after.Version != r.Version || len(evs) != before {
								t.Fatalf("a refused review wrote: version %d -> %d, events %d -> %d", r.Version, after.Version, before, len(evs))
							}
							return
						}
						if err != nil {
							t.Fatal(err)
						}
						if w.Token.TxID == 0 {
							t.Fatal("a review without a consistency token")
						}
						if !same(got, after) || got.Version != 2 || got.ReviewedBy == nil || *got.ReviewedBy != admin.UserID ||
							got.ReviewNotes != "checked" || got.ReviewedAt == nil {
							t.Fatalf("review answered %+v, stored %+v", got, after)
						}
						if len(evs) != before+1 || string(evs[len(evs)-1].Type) != string(kind)+"_"+string(tc.wantRow) {
							t.Fatalf("events after review: %d (was %d), last %+v", len(evs), before, evs[len(evs)-1])
						}
					})
				}
			})

			t.Run("a MANAGER may not approve or reject", func(t *testing.T) {
				r := f.create(t, mgr, kind, input(kind, f.prop, 5000))
				for _, approve := range []bool{true, false} {
					_, _, err := f.fin.Review(t.Context(), mgr, kind, r.ID, approve, "")
					domaintest.MustErr(t, err, domain.ErrForbidden)
				}
				if got := f.get(t, kind, r.ID); got.Status != domain.Pending || got.Version != 1 {
					t.Fatalf("row after refused reviews = %+v", got)
				}
			})

			t.Run("a MANAGER's delete asks an ADMIN", func(t *testing.T) {
				r := f.create(t, admin, kind, input(kind, f.prop, 5000))
				before := orgEvents(t, f.pool, f.org)
				deleted, req, _, err := f.fin.Delete(t.Context(), mgr, kind, r.ID)
				if err != nil || deleted || req.IsZero() {
					t.Fatalf("manager delete: deleted %v, request %v, %v", deleted, req, err)
				}
				if got, err := f.fin.Get(t.Context(), mgr, kind, r.ID); err != nil || !same(got, r) {
					t.Fatalf("row after a manager's delete = %+v (%v), want it unchanged %+v", got, err, r)
				}
				if after := orgEvents(t, f.pool, f.org); after != before {
					t.Fatalf("a deletion request wrote %d events", after-before)
				}
				// Asking twice returns the request already waiting.
				if _, again, _, err := f.fin.Delete(t.Context(), mgr, kind, r.ID); err != nil || again != req {
					t.Fatalf("second request = %v (%v), want the first %v", again, err, req)
				}
				// Only an ADMIN decides.
				for _, approve := range []bool{true, false} {
					_, _, err := f.fin.DecideDeletion(t.Context(), mgr, req, approve)
					domaintest.MustErr(t, err, domain.ErrForbidden)
				}

				dec, w, err := f.fin.DecideDeletion(t.Context(), admin, req, true)
				if err != nil {
					t.Fatal(err)
				}
				if dec.ID != req || dec.Status != domain.Approved || dec.TransactionID != r.ID || dec.Kind != kind || w.Token.TxID == 0 {
					t.Fatalf("decision = %+v %+v", dec, w)
				}
				_, err = f.fin.Get(t.Context(), admin, kind, r.ID)
				domaintest.MustErr(t, err, domain.ErrNotFound)
				ev := f.lastEvent(t, domain.EntityType(kind), r.ID)
				if string(ev.Type) != string(kind)+"_deleted" || ev.UserID != admin.UserID || ev.AggregateVersion != 2 {
					t.Fatalf("deletion event = %+v", ev)
				}
				m := metadata(t, ev)
				if m.Status != domain.Deleted || m.Previous == nil || m.Previous.Status != domain.Approved || m.Previous.AmountCents != 5000 ||
					m.Previous.BusinessDate != today || m.Previous.PaymentMode != domain.Cash || !slices.Equal(m.AffectedReportDates, []domain.Date{today}) {
					t.Fatalf("deletion metadata = %s", ev.Metadata)
				}
				// A decided request stays decided.
				for _, approve := range []bool{true, false} {
					_, _, err := f.fin.DecideDeletion(t.Context(), admin, req, approve)
					domaintest.MustErr(t, err, domain.ErrConflict, "already approved")
				}
			})

			t.Run("a rejected deletion request keeps the row", func(t *testing.T) {
				r := f.create(t, mgr, kind, input(kind, f.prop, 5000))
				_, req, _, err := f.fin.Delete(t.Context(), mgr, kind, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				before := orgEvents(t, f.pool, f.org)
				dec, _, err := f.fin.DecideDeletion(t.Context(), admin, req, false)
				if err != nil || dec.ID != req || dec.Status != domain.Rejected {
					t.Fatalf("decision = %+v, %v", dec, err)
				}
				if got := f.get(t, kind, r.ID); !same(got, r) {
					t.Fatalf("row after a rejected deletion = %+v, want %+v", got, r)
				}
				if after := orgEvents(t, f.pool, f.org); after != before {
					t.Fatalf("rejecting a deletion request wrote %d events", after-before)
				}
				_, _, err = f.fin.DecideDeletion(t.Context(), admin, req, true)
				domaintest.MustErr(t, err, domain.ErrConflict)
				// The manager may ask again; that is a new request.
				_, again, _, err := f.fin.Delete(t.Context(), mgr, kind, r.ID)
				if err != nil || again == req {
					t.Fatalf("a new request %v (%v) reused the rejected one's id", again, err)
				}
			})

			t.Run("an ADMIN's delete is immediate", func(t *testing.T) {
				r := f.create(t, mgr, kind, input(kind, f.prop, 5000))
				_, req, _, err := f.fin.Delete(t.Context(), mgr, kind, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				deleted, none, w, err := f.fin.Delete(t.Context(), admin, kind, r.ID)
				if err != nil || !deleted || !none.IsZero() || w.Token.TxID == 0 {
					t.Fatalf("admin delete: deleted %v, request %v, token %+v, %v", deleted, none, w, err)
				}
				for _, actor := range []domain.Actor{admin, mgr} {
					_, err := f.fin.Get(t.Context(), actor, kind, r.ID)
					domaintest.MustErr(t, err, domain.ErrNotFound)
				}
				_, _, _, err = f.fin.Delete(t.Context(), admin, kind, r.ID)
				domaintest.MustErr(t, err, domain.ErrNotFound)
				_, _, err = f.fin.Update(t.Context(), admin, kind, r.ID, finance.PatchInput{AmountCents: ptr(int64(1))})
				domaintest.MustErr(t, err, domain.ErrNotFound)
				ev := f.lastEvent(t, domain.EntityType(kind), r.ID)
				m := metadata(t, ev)
				if string(ev.Type) != string(kind)+"_deleted" || m.Status != domain.Deleted || m.Previous == nil || m.Previous.Status != domain.Pending {
					t.Fatalf("deletion event = %+v %s", ev, ev.Metadata)
				}
				// The manager's waiting request was settled by the delete.
				_, _, err = f.fin.DecideDeletion(t.Context(), admin, req, true)
				domaintest.MustErr(t, err, domain.ErrConflict)
			})

			t.Run("unknown rows and requests are not found", func(t *testing.T) {
				ghost := ghostID
				ctx := t.Context()
				_, err := f.fin.Get(ctx, admin, kind, ghost)
				domaintest.MustErr(t, err, domain.ErrNotFound)
				_, _, err = f.fin.Update(ctx, admin, kind, ghost, finance.PatchInput{AmountCents: ptr(int64(1))})
				domaintest.MustErr(t, err, domain.ErrNotFound)
				_, _, _, err = f.fin.Delete(ctx, admin, kind, ghost)
				domaintest.MustErr(t, err, domain.ErrNotFound)
				for _, approve := range []bool{true, false} {
					_, _, err = f.fin.Review(ctx, admin, kind, ghost, approve, "")
					domaintest.MustErr(t, err, domain.ErrNotFound)
					_, _, err = f.fin.DecideDeletion(ctx, admin, ghost, approve)
					domaintest.MustErr(t, err, domain.ErrNotFound)
				}
				// A revenue is not an expense, and the other way round.
				other := map[domain.Kind]domain.Kind{domain.Revenue: domain.Expense, domain.Expense: domain.Revenue}[kind]
				r := f.create(t, admin, kind, input(kind, f.prop, 5000))
				_, err = f.fin.Get(ctx, admin, other, r.ID)
				domaintest.MustErr(t, err, domain.ErrNotFound)
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
	la := f.property(t, "Venice Beach", "America/Los_Angeles")
	kiri := f.property(t, "Christmas Island", "Pacific/Kiritimati")
	at := func(s string) *time.Time { v, _ := time.Parse(time.RFC3339, s); return &v }
	d := domain.MustDate
	for _, tc := range []struct {
		name         string
		patch        finance.PatchInput
		wantProperty domain.ID
		wantMode     domain.PaymentMode
		wantDate     domain.Date
		wantAffected []domain.Date
	}{
		{"another day", finance.PatchInput{OccurredAt: at("2026-06-10T04:30:00Z")}, f.prop, domain.Cash, d("2026-06-10"), []domain.Date{today, d("2026-06-10")}},
		{"late evening in India is the next day", finance.PatchInput{OccurredAt: at("2026-06-15T19:00:00Z")}, f.prop, domain.Cash, d("2026-06-16"), []domain.Date{today, d("2026-06-16")}},
		{"a property in Los Angeles, same instant", finance.PatchInput{PropertyID: &la}, la, domain.Cash, d("2026-06-14"), []domain.Date{today, d("2026-06-14")}},
		{"a property in Kiritimati, same instant, same date", finance.PatchInput{PropertyID: &kiri}, kiri, domain.Cash, today, []domain.Date{today}},
		{"bank instead of cash", finance.PatchInput{PaymentMode: ptr(domain.Bank)}, f.prop, domain.Bank, today, []domain.Date{today}},
		{"property, time and mode at once", finance.PatchInput{PropertyID: &la, OccurredAt: at("2026-06-01T12:00:00Z"), PaymentMode: ptr(domain.Bank)}, la, domain.Bank, d("2026-06-01"), []domain.Date{today, d("2026-06-01")}},
	} {
		for _, kind := range kinds {
			t.Run(string(kind)+"/"+tc.name, func(t *testing.T) {
				r := f.create(t, f.admin, kind, input(kind, f.prop, 5000))
				got, w, err := f.fin.Update(t.Context(), f.admin, kind, r.ID, tc.patch)
				if err != nil {
					t.Fatal(err)
				}
				if w.Token.TxID == 0 {
					t.Fatal("no consistency token")
				}
				if got.BusinessDate != tc.wantDate || got.PropertyID != tc.wantProperty || got.PaymentMode != tc.wantMode ||
					got.Status != domain.Approved || got.Version != 2 || got.AmountCents != 5000 {
					t.Fatalf("patched row = %+v, want %s at %s in %s", got, tc.wantMode, tc.wantDate, tc.wantProperty)
				}
				if back := f.get(t, kind, r.ID); !same(back, got) {
					t.Fatalf("read back %+v, want %+v", back, got)
				}
				ev := f.lastEvent(t, domain.EntityType(kind), r.ID)
				m := metadata(t, ev)
				if string(ev.Type) != string(kind)+"_updated" || ev.AggregateVersion != 2 || ev.PropertyID == nil || *ev.PropertyID != tc.wantProperty {
					t.Fatalf("event = %+v", ev)
				}
				if m.BusinessDate != tc.wantDate || m.PropertyID != tc.wantProperty || m.PaymentMode != tc.wantMode || m.Status != domain.Approved {
					t.Fatalf("metadata = %s", ev.Metadata)
				}
				if m.Previous == nil || m.Previous.BusinessDate != today || m.Previous.PropertyID != f.prop || m.Previous.PaymentMode != domain.Cash || m.Previous.AmountCents != 5000 {
					t.Fatalf("metadata.previous = %s", ev.Metadata)
				}
				if !slices.Equal(m.AffectedReportDates, tc.wantAffected) {
					t.Fatalf("affectedReportDates = %q, want %q", m.AffectedReportDates, tc.wantAffected)
				}
			})
		}
	}

	t.Run("a patch that changes nothing writes nothing", func(t *testing.T) {
		r := f.create(t, f.admin, domain.Revenue, input(domain.Revenue, f.prop, 5000))
		got, w, err := f.fin.Update(t.Context(), f.admin, domain.Revenue, r.ID, finance.PatchInput{AmountCents: ptr(int64(5000)), OccurredAt: &morning})
		if err != nil {
			t.Fatal(err)
		}
		if !same(got, r) || w.Token.TxID == 0 {
			t.Fatalf("no-op patch answered %+v (token %+v), want %+v", got, w, r)
		}
		if evs := f.events(t, domain.Revenue, r.ID); len(evs) != 1 {
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
	june16 := domain.MustDate("2026-06-16")

	t.Run("a pending row from yesterday blocks, a daily approval for today lets through", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		ctx := t.Context()
		f.create(t, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 1000))
		f.create(t, f.mgr, domain.Expense, input(domain.Expense, f.prop, 1000)) // same day: no gate
		f.clock.Advance(24 * time.Hour)                                         // tomorrow, 2026-06-16
		before := orgEvents(t, f.pool, f.org)
		next := func(kind domain.Kind) finance.CreateInput {
			in := input(kind, f.prop, 2000)
			in.OccurredAt = morning.AddDate(0, 0, 1)
			return in
		}
		for _, kind := range kinds {
			_, _, err := f.tryCreate(ctx, f.mgr, kind, next(kind))
			domaintest.MustErr(t, err, domain.ErrConflict, "pending approval created on "+today.String(), "daily approval for 2026-06-16")
		}
		if after := orgEvents(t, f.pool, f.org); after != before {
			t.Fatalf("a refused create wrote %d events", after-before)
		}
		// The ADMIN is never gated.
		f.create(t, f.admin, domain.Revenue, next(domain.Revenue))

		grant, w, err := f.fin.GrantDailyApproval(ctx, f.admin, f.mgr.UserID, june16)
		if err != nil {
			t.Fatal(err)
		}
		if w.Token.TxID == 0 || grant.ID.IsZero() || grant.ManagerUserID != f.mgr.UserID || grant.Date != june16 || grant.GrantedBy != f.admin.UserID {
			t.Fatalf("grant = %+v %+v", grant, w)
		}
		ev := f.lastEvent(t, domain.EntityDailyApproval, grant.ID)
		var md domain.DailyApprovalMetadata
		if err := json.Unmarshal(ev.Metadata, &md); err != nil {
			t.Fatal(err)
		}
		if ev.Type != domain.DailyApprovalGranted || ev.EntityType != domain.EntityDailyApproval || ev.AggregateVersion != 1 ||
			ev.UserID != f.admin.UserID || md.ManagerUserID != f.mgr.UserID || md.Date != june16 {
			t.Fatalf("grant event = %+v %s", ev, ev.Metadata)
		}
		for _, kind := range kinds {
			if got := f.create(t, f.mgr, kind, next(kind)); got.Status != domain.Pending {
				t.Fatalf("created after the grant: %+v", got)
			}
		}
		// The same grant twice is a conflict; a MANAGER may not grant.
		_, _, err = f.fin.GrantDailyApproval(ctx, f.admin, f.mgr.UserID, june16)
		domaintest.MustErr(t, err, domain.ErrConflict)
		_, _, err = f.fin.GrantDailyApproval(ctx, f.mgr, f.mgr.UserID, june16.AddDays(1))
		domaintest.MustErr(t, err, domain.ErrForbidden)

		// The grant is for one day only.
		f.clock.Advance(24 * time.Hour)
		_, _, err = f.tryCreate(ctx, f.mgr, domain.Revenue, next(domain.Revenue))
		domaintest.MustErr(t, err, domain.ErrConflict)
	})

	t.Run("a grant names a MANAGER of the organization and a date near today", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		ctx := t.Context()
		_, _, err := f.fin.GrantDailyApproval(ctx, f.admin, ghostID, today)
		mustNotFoundField(t, err, "managerUserId")
		_, _, err = f.fin.GrantDailyApproval(ctx, f.admin, f.admin.UserID, today)
		domaintest.MustFields(t, err, "managerUserId")
		_, _, err = f.fin.GrantDailyApproval(ctx, f.admin, f.mgr.UserID, domain.MustDate("1999-01-01"))
		domaintest.MustFields(t, err, "date")
	})

	t.Run("reviewing the old rows lifts the gate", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		ctx := t.Context()
		a := f.create(t, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 1000))
		b := f.create(t, f.mgr, domain.Expense, input(domain.Expense, f.prop, 1000))
		f.clock.Advance(24 * time.Hour)
		_, _, err := f.tryCreate(ctx, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 1))
		domaintest.MustErr(t, err, domain.ErrConflict)
		if _, _, err := f.fin.Review(ctx, f.admin, domain.Revenue, a.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		_, _, err = f.tryCreate(ctx, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 1))
		domaintest.MustErr(t, err, domain.ErrConflict)
		if _, _, err := f.fin.Review(ctx, f.admin, domain.Expense, b.ID, false, ""); err != nil {
			t.Fatal(err)
		}
		f.create(t, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 1))
	})

	t.Run("property access is checked before the gate", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		other := f.property(t, "Not Theirs", "")
		f.create(t, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 1000))
		f.clock.Advance(24 * time.Hour)
		_, _, err := f.tryCreate(t.Context(), f.mgr, domain.Revenue, input(domain.Revenue, other, 1))
		mustNotFoundField(t, err, "propertyId")
	})

	t.Run("days are taken in each property's zone", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		ctx := t.Context()
		// 06:30 UTC on 2026-06-15: 23:30 of the 14th in Los Angeles, noon of
		// the 15th in Kolkata, 20:30 of the 15th in Kiritimati.
		la := f.property(t, "Venice Beach", "America/Los_Angeles")
		kiri := f.property(t, "Christmas Island", "Pacific/Kiritimati")
		f.assign(t, f.mgr, f.prop, la, kiri)
		f.create(t, f.mgr, domain.Revenue, input(domain.Revenue, la, 1000)) // created on the 14th, LA time
		f.create(t, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 1000))

		// One hour later it is the 15th in Los Angeles: the LA row is from
		// an earlier day there, although in UTC and in Kolkata both rows
		// were created today.
		f.clock.Advance(time.Hour)
		_, _, err := f.tryCreate(ctx, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 1))
		domaintest.MustErr(t, err, domain.ErrConflict, "created on 2026-06-14", "daily approval for 2026-06-15")
		if _, _, err := f.fin.GrantDailyApproval(ctx, f.admin, f.mgr.UserID, today); err != nil {
			t.Fatal(err)
		}
		f.create(t, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 1))
		f.create(t, f.mgr, domain.Revenue, input(domain.Revenue, la, 1))

		// At 10:30 UTC it is already the 16th in Kiritimati (still the
		// 15th in Kolkata): the grant for the 15th covers Kolkata, not
		// Kiritimati.
		f.clock.Set(baseTime.Add(4 * time.Hour))
		f.create(t, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 1))
		_, _, err = f.tryCreate(ctx, f.mgr, domain.Revenue, input(domain.Revenue, kiri, 1))
		domaintest.MustErr(t, err, domain.ErrConflict, "daily approval for 2026-06-16")
		if _, _, err := f.fin.GrantDailyApproval(ctx, f.admin, f.mgr.UserID, june16); err != nil {
			t.Fatal(err)
		}
		if got := f.create(t, f.mgr, domain.Revenue, input(domain.Revenue, kiri, 1)); got.BusinessDate != today {
			t.Fatalf("Kiritimati row = %+v", got)
		}
	})
}

// TestListRevenuesAndExpenses: filters, order (newest business date
// first) and cursor paging of List.
func TestListRevenuesAndExpenses(t *testing.T) {
	t.Parallel()
	f := setup(t)
	second := f.property(t, "Hill Top", "")

	type seed struct {
		prop   domain.ID
		day    int // of June 2026
		status domain.Status
	}
	seeds := []seed{
		{f.prop, 1, domain.Approved}, {f.prop, 3, domain.Pending}, {f.prop, 3, domain.Approved}, {f.prop, 5, domain.Rejected},
		{f.prop, 7, domain.Approved}, {f.prop, 7, domain.Pending}, {f.prop, 7, domain.Approved}, {f.prop, 9, domain.Approved},
		{second, 2, domain.Approved}, {second, 3, domain.Approved}, {second, 8, domain.Approved}, {second, 10, domain.Approved},
	}
	// Both kinds are seeded before either is listed: each list must show
	// its own kind only.
	seeded := map[domain.Kind]map[domain.ID]seed{}
	for _, kind := range kinds {
		seeded[kind] = map[domain.ID]seed{}
		for i, s := range seeds {
			in := input(kind, s.prop, int64(100+i))
			in.OccurredAt = time.Date(2026, 6, s.day, 4, 30, 0, 0, time.UTC)
			actor := f.admin
			if s.status != domain.Approved {
				actor = f.mgr
			}
			r := f.create(t, actor, kind, in)
			if s.status == domain.Rejected {
				if _, _, err := f.fin.Review(t.Context(), f.admin, kind, r.ID, false, ""); err != nil {
					t.Fatal(err)
				}
			}
			seeded[kind][r.ID] = s
		}
	}
	// walk lists every page of filter and returns all rows in order.
	walk := func(t *testing.T, actor domain.Actor, kind domain.Kind, filter finance.ListFilter) []finance.Transaction {
		t.Helper()
		var all []finance.Transaction
		for page := 0; ; page++ {
			if page > 1000 {
				t.Fatalf("list %s %+v: paging does not end", kind, filter)
			}
			items, next, err := f.fin.List(t.Context(), actor, kind, filter)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, items...)
			if next == "" {
				return all
			}
			filter.Cursor = next
		}
	}
	june := func(day int) domain.Date { return domain.Date{Year: 2026, Month: time.June, Day: day} }
	for _, kind := range kinds {
		byID := seeded[kind]
		t.Run(string(kind), func(t *testing.T) {
			for _, tc := range []struct {
				filter finance.ListFilter
				keep   func(s seed) bool
			}{
				{finance.ListFilter{}, func(seed) bool { return true }},
				{finance.ListFilter{PropertyID: f.prop}, func(s seed) bool { return s.prop == f.prop }},
				{finance.ListFilter{PropertyID: second}, func(s seed) bool { return s.prop == second }},
				{finance.ListFilter{StartDate: june(3)}, func(s seed) bool { return s.day >= 3 }},
				{finance.ListFilter{EndDate: june(7)}, func(s seed) bool { return s.day <= 7 }},
				{finance.ListFilter{StartDate: june(3), EndDate: june(7)}, func(s seed) bool { return s.day >= 3 && s.day <= 7 }},
				{finance.ListFilter{StartDate: june(7), EndDate: june(7)}, func(s seed) bool { return s.day == 7 }},
				{finance.ListFilter{Status: domain.Pending}, func(s seed) bool { return s.status == domain.Pending }},
				{finance.ListFilter{Status: domain.Approved}, func(s seed) bool { return s.status == domain.Approved }},
				{finance.ListFilter{Status: domain.Rejected}, func(s seed) bool { return s.status == domain.Rejected }},
				{finance.ListFilter{PropertyID: f.prop, Status: domain.Approved, StartDate: june(2), EndDate: june(8)},
					func(s seed) bool { return s.prop == f.prop && s.status == domain.Approved && s.day >= 2 && s.day <= 8 }},
				{finance.ListFilter{StartDate: domain.MustDate("2026-07-01")}, func(seed) bool { return false }},
			} {
				t.Run(fmt.Sprintf("filter %+v", tc.filter), func(t *testing.T) {
					want := 0
					for _, s := range seeds {
						if tc.keep(s) {
							want++
						}
					}
					// One page, then pages of every size: the same rows in the
					// same order, each exactly once.
					one := tc.filter
					one.Limit = 500
					all := walk(t, f.admin, kind, one)
					if len(all) != want {
						t.Fatalf("%d rows, want %d", len(all), want)
					}
					for i, r := range all {
						s, ok := byID[r.ID]
						if !ok {
							t.Fatalf("row %s (%s) is not one of the %ss seeded", r.ID, r.BusinessDate, kind)
						}
						if !tc.keep(s) || r.Status != s.status {
							t.Fatalf("row %+v does not match filter %+v", r, tc.filter)
						}
						if i > 0 && all[i-1].BusinessDate.Before(r.BusinessDate) {
							t.Fatalf("rows not newest business date first: %s before %s", all[i-1].BusinessDate, r.BusinessDate)
						}
					}
					for _, size := range []int{1, 2, 5} {
						paged := tc.filter
						paged.Limit = size
						got := walk(t, f.admin, kind, paged)
						if !slices.EqualFunc(got, all, func(a, b finance.Transaction) bool { return a.ID == b.ID }) {
							t.Fatalf("pages of %d walk %d rows differently from one page of %d", size, len(got), len(all))
						}
					}
				})
			}
			t.Run("a MANAGER sees the assigned properties only", func(t *testing.T) {
				rows := walk(t, f.mgr, kind, finance.ListFilter{Limit: 3})
				for _, r := range rows {
					if r.PropertyID != f.prop {
						t.Fatalf("manager sees a row of an unassigned property: %+v", r)
					}
				}
				if len(rows) != 8 {
					t.Fatalf("manager sees %d rows, want the 8 of the assigned property", len(rows))
				}
				_, _, err := f.fin.List(t.Context(), f.mgr, kind, finance.ListFilter{PropertyID: second})
				mustNotFoundField(t, err, "propertyId")
			})

			t.Run("a first page says where the next starts", func(t *testing.T) {
				items, next, err := f.fin.List(t.Context(), f.admin, kind, finance.ListFilter{Limit: 12})
				if err != nil || len(items) != 12 || next != "" {
					t.Fatalf("exactly 12 rows on a page of 12: %d rows, next %q, %v", len(items), next, err)
				}
				items, next, err = f.fin.List(t.Context(), f.admin, kind, finance.ListFilter{Limit: 11})
				if err != nil || len(items) != 11 || next == "" {
					t.Fatalf("11 of 12 rows: %d rows, next %q, %v", len(items), next, err)
				}
			})

			t.Run("bad filters name their fields", func(t *testing.T) {
				for _, tc := range []struct {
					filter finance.ListFilter
					field  string
				}{
					{finance.ListFilter{Limit: 501}, "limit"},
					{finance.ListFilter{Limit: -1}, "limit"},
					{finance.ListFilter{StartDate: june(7), EndDate: june(6)}, "endDate"},
					{finance.ListFilter{Status: domain.Deleted}, "status"},
					{finance.ListFilter{Cursor: "not-a-cursor"}, "cursor"},
				} {
					_, _, err := f.fin.List(t.Context(), f.admin, kind, tc.filter)
					domaintest.MustFields(t, err, tc.field)
				}
			})
		})
	}
}
