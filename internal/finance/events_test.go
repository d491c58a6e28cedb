package finance_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"hmp/internal/domain"
	"hmp/internal/finance"
)

// TestEventPerStateChange follows a revenue and an expense through their
// whole life: every state change appends exactly one event with the
// envelope and metadata of API.md, versions 1, 2, 3, ... per entity; what
// changes nothing appends nothing.
func TestEventPerStateChange(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ctx := t.Context()
			admin, mgr := f.admin, f.mgr
			la := f.property(t, "Venice Beach", "America/Los_Angeles")
			f.assign(t, mgr, f.prop, la)
			june14 := domain.MustDate("2026-06-14")

			pending := domain.TransactionState{PropertyID: f.prop, Status: domain.Pending, AmountCents: 5000, Currency: "INR",
				PaymentMode: domain.Cash, BusinessDate: today, OccurredAt: morning}
			if kind == domain.Revenue {
				pending.Source = "room"
			} else {
				pending.Category = "supplies"
			}
			with := func(s domain.TransactionState, mod func(*domain.TransactionState)) domain.TransactionState {
				mod(&s)
				return s
			}
			edited := with(pending, func(s *domain.TransactionState) { s.AmountCents, s.Description = 5500, "two nights" })
			approved := with(edited, func(s *domain.TransactionState) { s.Status = domain.Approved })
			moved := with(approved, func(s *domain.TransactionState) {
				s.PropertyID, s.BusinessDate, s.PaymentMode = la, june14, domain.Bank
			})
			backToPending := with(moved, func(s *domain.TransactionState) { s.Status = domain.Pending; s.AmountCents = 5600 })
			rejected := with(backToPending, func(s *domain.TransactionState) { s.Status = domain.Rejected })
			deleted := with(rejected, func(s *domain.TransactionState) { s.Status = domain.Deleted })

			var id domain.ID
			steps := []struct {
				name     string
				do       func() (domain.Token, error)
				actor    domain.ID
				action   domain.Action
				property domain.ID
				state    domain.TransactionState
				previous *domain.TransactionState
				affected []domain.Date
				notes    string
			}{
				{name: "a MANAGER adds", actor: mgr.UserID, action: domain.ActionAdded, property: f.prop, state: pending, affected: []domain.Date{today},
					do: func() (domain.Token, error) {
						r, w, err := f.tryCreate(ctx, mgr, kind, input(kind, f.prop, 5000))
						id = r.ID
						return w.Token, err
					}},
				{name: "the MANAGER edits", actor: mgr.UserID, action: domain.ActionUpdated, property: f.prop, state: edited, previous: &pending, affected: []domain.Date{today},
					do: func() (domain.Token, error) {
						_, w, err := f.fin.Update(ctx, mgr, kind, id, finance.PatchInput{AmountCents: ptr(int64(5500)), Description: ptr("two nights")})
						return w.Token, err
					}},
				{name: "an ADMIN approves", actor: admin.UserID, action: domain.ActionApproved, property: f.prop, state: approved, previous: &edited,
					affected: []domain.Date{today}, notes: "receipt seen",
					do: func() (domain.Token, error) {
						_, w, err := f.fin.Review(ctx, admin, kind, id, true, "receipt seen")
						return w.Token, err
					}},
				{name: "the ADMIN moves it to Los Angeles and to the bank", actor: admin.UserID, action: domain.ActionUpdated, property: la, state: moved, previous: &approved,
					affected: []domain.Date{today, june14},
					do: func() (domain.Token, error) {
						_, w, err := f.fin.Update(ctx, admin, kind, id, finance.PatchInput{PropertyID: &la, PaymentMode: ptr(domain.Bank)})
						return w.Token, err
					}},
				{name: "the MANAGER edits the approved row", actor: mgr.UserID, action: domain.ActionUpdated, property: la, state: backToPending, previous: &moved,
					affected: []domain.Date{june14},
					do: func() (domain.Token, error) {
						_, w, err := f.fin.Update(ctx, mgr, kind, id, finance.PatchInput{AmountCents: ptr(int64(5600))})
						return w.Token, err
					}},
				{name: "the ADMIN rejects", actor: admin.UserID, action: domain.ActionRejected, property: la, state: rejected, previous: &backToPending,
					affected: []domain.Date{june14},
					do: func() (domain.Token, error) {
						_, w, err := f.fin.Review(ctx, admin, kind, id, false, "")
						return w.Token, err
					}},
				{name: "the ADMIN deletes", actor: admin.UserID, action: domain.ActionDeleted, property: la, state: deleted, previous: &rejected,
					affected: []domain.Date{june14},
					do: func() (domain.Token, error) {
						_, _, w, err := f.fin.Delete(ctx, admin, kind, id)
						return w.Token, err
					}},
			}
			seen := map[domain.ID]bool{}
			for i, st := range steps {
				// Each step happens a minute after the previous one.
				at := baseTime.Add(time.Duration(i) * time.Minute)
				f.clock.Set(at)
				before := orgEvents(t, f.pool, f.org)
				tok, err := st.do()
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				if tok.TxID == 0 {
					t.Fatalf("%s: no consistency token", st.name)
				}
				if after := orgEvents(t, f.pool, f.org); after != before+1 {
					t.Fatalf("%s appended %d events, want 1", st.name, after-before)
				}
				ev := f.lastEvent(t, domain.EntityType(kind), id)
				if ev.ID.IsZero() || seen[ev.ID] {
					t.Fatalf("%s: event id %s missing or reused", st.name, ev.ID)
				}
				seen[ev.ID] = true
				if ev.Version != "v1" || ev.Type != domain.TransactionEvent(kind, st.action) || ev.OrgID != f.org || ev.UserID != st.actor ||
					ev.EntityType != domain.EntityType(kind) || ev.EntityID != id || ev.AggregateVersion != i+1 || ev.PropertyID == nil || *ev.PropertyID != st.property {
					t.Fatalf("%s: envelope %+v", st.name, ev)
				}
				if !ev.Timestamp.Equal(at) {
					t.Fatalf("%s: timestamp %s, want %s", st.name, ev.Timestamp, at)
				}
				m := metadata(t, ev)
				m.OccurredAt = m.OccurredAt.UTC()
				if m.TransactionState != st.state {
					t.Fatalf("%s: metadata state %+v, want %+v", st.name, m.TransactionState, st.state)
				}
				if m.Previous != nil {
					m.Previous.OccurredAt = m.Previous.OccurredAt.UTC()
				}
				if (m.Previous == nil) != (st.previous == nil) || (m.Previous != nil && *m.Previous != *st.previous) {
					t.Fatalf("%s: metadata.previous %+v, want %+v", st.name, m.Previous, st.previous)
				}
				if !slices.Equal(m.AffectedReportDates, st.affected) || m.Notes != st.notes {
					t.Fatalf("%s: affectedReportDates %q notes %q, want %q %q", st.name, m.AffectedReportDates, m.Notes, st.affected, st.notes)
				}
				// The row's version is its latest event's aggregate version.
				if st.action != domain.ActionDeleted {
					if got := f.get(t, kind, id); got.Version != ev.AggregateVersion || got.Status != st.state.Status {
						t.Fatalf("%s: row %+v after event v%d", st.name, got, ev.AggregateVersion)
					}
				}
			}

			// Calls that change nothing append nothing.
			before := orgEvents(t, f.pool, f.org)
			r := f.create(t, admin, kind, input(kind, f.prop, 1))
			after := orgEvents(t, f.pool, f.org)
			f.fin.Review(ctx, admin, kind, r.ID, true, "")                                       // not pending
			f.fin.Review(ctx, mgr, kind, r.ID, true, "")                                         // forbidden
			f.fin.Update(ctx, admin, kind, r.ID, finance.PatchInput{AmountCents: ptr(int64(0))}) // invalid
			f.fin.Update(ctx, admin, kind, r.ID, finance.PatchInput{AmountCents: ptr(int64(1))}) // no change
			f.fin.Get(ctx, mgr, kind, r.ID)                                                      // a read
			f.fin.Delete(ctx, mgr, kind, r.ID)                                                   // a deletion request
			f.tryCreate(ctx, mgr, kind, input(kind, ghostID, 1))                                 // not found
			if final := orgEvents(t, f.pool, f.org); final != before+1 || after != before+1 {
				t.Fatalf("calls that changed nothing appended %d events", final-after)
			}
		})
	}
}

// parallel runs n calls at once and returns their errors by index.
func parallel(n int, call func(i int) error) []error {
	out := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = call(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// TestConcurrentWritesLoseNothing: concurrent changes of one row are
// serialized or refused with a conflict, never lost: the final version is
// the number of successful writes plus one, and each has its own event.
func TestConcurrentWritesLoseNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	admin := f.admin

	t.Run("patches", func(t *testing.T) {
		r := f.create(t, admin, domain.Revenue, input(domain.Revenue, f.prop, 1))
		const n = 16
		var mu sync.Mutex
		byVersion := map[int]int64{}
		errs := parallel(n, func(i int) error {
			actor := admin
			if i%2 == 1 {
				actor = f.mgr
			}
			got, _, err := f.fin.Update(ctx, actor, domain.Revenue, r.ID, finance.PatchInput{AmountCents: ptr(int64(1000 + i))})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if got.AmountCents != int64(1000+i) {
				t.Errorf("patch %d answered amount %d", i, got.AmountCents)
			}
			if _, dup := byVersion[got.Version]; dup {
				t.Errorf("two successful writes answered version %d", got.Version)
			}
			byVersion[got.Version] = got.AmountCents
			return nil
		})
		for i, err := range errs {
			if err != nil && !errors.Is(err, domain.ErrConflict) {
				t.Fatalf("patch %d: %v, want success or a conflict", i, err)
			}
		}
		final := f.get(t, domain.Revenue, r.ID)
		if final.Version != len(byVersion)+1 {
			t.Fatalf("final version %d after %d successful writes, want %d", final.Version, len(byVersion), len(byVersion)+1)
		}
		if final.AmountCents != byVersion[final.Version] {
			t.Fatalf("final amount %d, but version %d wrote %d", final.AmountCents, final.Version, byVersion[final.Version])
		}
		evs := f.events(t, domain.Revenue, r.ID)
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
			m, prev := metadata(t, ev), metadata(t, evs[i-1])
			if ev.Type != domain.TransactionEvent(domain.Revenue, domain.ActionUpdated) || m.AmountCents != byVersion[i+1] || m.Previous.AmountCents != prev.AmountCents {
				t.Fatalf("event v%d = %s, want the write answered as v%d (%d) on top of v%d", ev.AggregateVersion, ev.Metadata, i+1, byVersion[i+1], i)
			}
		}
		t.Logf("%d concurrent patches: %d written, %d refused", n, len(byVersion), n-len(byVersion))
	})

	t.Run("approve against reject", func(t *testing.T) {
		for round := range 5 {
			r := f.create(t, f.mgr, domain.Expense, input(domain.Expense, f.prop, int64(round+1)))
			errs := parallel(6, func(i int) error {
				_, _, err := f.fin.Review(ctx, admin, domain.Expense, r.ID, i%2 == 0, "")
				return err
			})
			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case errors.Is(err, domain.ErrConflict):
				default:
					t.Fatalf("review: %v", err)
				}
			}
			if evs := f.events(t, domain.Expense, r.ID); wins != 1 || len(evs) != 2 {
				t.Fatalf("round %d: %d reviews won, %d events; want 1 and 2", round, wins, len(evs))
			}
		}
	})

	t.Run("deletion requests", func(t *testing.T) {
		for round := range 3 {
			r := f.create(t, admin, domain.Expense, input(domain.Expense, f.prop, int64(round+1)))
			ids := make([]domain.ID, 8)
			errs := parallel(8, func(i int) error {
				_, id, _, err := f.fin.Delete(ctx, f.mgr, domain.Expense, r.ID)
				ids[i] = id
				return err
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d, request %d: %v", round, i, err)
				}
			}
			if ids[0].IsZero() || slices.ContainsFunc(ids, func(id domain.ID) bool { return id != ids[0] }) {
				t.Fatalf("round %d: concurrent requests to delete one row made several requests: %v", round, ids)
			}
			if _, _, err := f.fin.DecideDeletion(ctx, admin, ids[0], true); err != nil {
				t.Fatal(err)
			}
			if evs := f.events(t, domain.Expense, r.ID); len(evs) != 2 || evs[1].Type != domain.TransactionEvent(domain.Expense, domain.ActionDeleted) {
				t.Fatalf("round %d: %d events", round, len(evs))
			}
		}
	})

	t.Run("daily approvals", func(t *testing.T) {
		date := domain.MustDate("2026-06-20")
		errs := parallel(8, func(int) error {
			_, _, err := f.fin.GrantDailyApproval(ctx, admin, f.mgr.UserID, date)
			return err
		})
		granted := 0
		for _, err := range errs {
			switch {
			case err == nil:
				granted++
			case errors.Is(err, domain.ErrConflict):
			default:
				t.Fatalf("grant: %v", err)
			}
		}
		var n int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE org_id = $1 AND entity_type = 'daily_approval'`, f.org).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if granted != 1 || n != 1 {
			t.Fatalf("%d grants succeeded, %d events; want 1 and 1", granted, n)
		}
	})

	t.Run("delete against edit", func(t *testing.T) {
		r := f.create(t, admin, domain.Revenue, input(domain.Revenue, f.prop, 1))
		var mu sync.Mutex
		edits := 0
		errs := parallel(8, func(i int) error {
			if i == 0 {
				_, _, _, err := f.fin.Delete(ctx, admin, domain.Revenue, r.ID)
				return err
			}
			_, _, err := f.fin.Update(ctx, admin, domain.Revenue, r.ID, finance.PatchInput{AmountCents: ptr(int64(10 + i))})
			if err == nil {
				mu.Lock()
				edits++
				mu.Unlock()
			}
			return err
		})
		for i, err := range errs {
			switch {
			case err == nil:
			case i > 0 && (errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrConflict)):
			default:
				t.Fatalf("call %d: %v", i, err)
			}
		}
		evs := f.events(t, domain.Revenue, r.ID)
		last := evs[len(evs)-1]
		if len(evs) != edits+2 || last.Type != domain.TransactionEvent(domain.Revenue, domain.ActionDeleted) || last.AggregateVersion != edits+2 {
			t.Fatalf("%d edits before the delete, events %d, last %s v%d", edits, len(evs), last.Type, last.AggregateVersion)
		}
	})
}
