package finance_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"hmp/internal/domain"
	"hmp/internal/domain/domaintest"
	"hmp/internal/finance"
)

// TestFoldEqualsTable: after a randomized scenario of creates, edits,
// moves between properties and dates, approvals, rejections, deletes and
// deletion requests by an ADMIN and a MANAGER, folding each revenue's and
// expense's events gives exactly its table row (every column), and a
// deleted row folds to "does not exist".
func TestFoldEqualsTable(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	f := setup(t)
	ctx := t.Context()
	second := f.property(t, "Lake Side", "America/New_York")
	f.assign(t, f.mgr, f.prop, second)
	props := []domain.ID{f.prop, second}
	type entity struct {
		kind domain.Kind
		id   domain.ID
	}
	var ents []entity
	pick := func() entity { return ents[rng.IntN(len(ents))] }
	who := func() domain.Actor {
		if rng.IntN(2) == 0 {
			return f.admin
		}
		return f.mgr
	}
	occurred := func() time.Time {
		return baseTime.Add(-time.Duration(rng.IntN(72*60)) * time.Minute)
	}
	for step := 0; step < 80; step++ {
		f.clock.Advance(time.Duration(1+rng.IntN(5000)) * time.Millisecond)
		op := rng.IntN(10)
		if len(ents) == 0 {
			op = 0
		}
		var err error
		switch {
		case op < 3:
			kind := kinds[rng.IntN(2)]
			in := input(kind, props[rng.IntN(2)], int64(1+rng.IntN(100000)))
			in.OccurredAt = occurred()
			if rng.IntN(2) == 0 {
				in.PaymentMode = domain.Bank
				in.BankReference = ptr(fmt.Sprintf("REF-%d", step))
			}
			var r finance.Transaction
			r, _, err = f.tryCreate(ctx, who(), kind, in)
			if err == nil {
				ents = append(ents, entity{kind, r.ID})
			}
		case op < 6:
			e := pick()
			var p finance.PatchInput
			switch rng.IntN(5) {
			case 0:
				p.AmountCents = ptr(int64(1 + rng.IntN(100000)))
			case 1:
				p.OccurredAt = ptr(occurred())
			case 2:
				p.PropertyID = &props[rng.IntN(2)]
			case 3:
				p.PaymentMode = ptr([]domain.PaymentMode{domain.Cash, domain.Bank}[rng.IntN(2)])
			case 4:
				p.Description = ptr(fmt.Sprintf("note %d", step))
			}
			_, _, err = f.fin.Update(ctx, who(), e.kind, e.id, p)
		case op < 8:
			e := pick()
			_, _, err = f.fin.Review(ctx, f.admin, e.kind, e.id, rng.IntN(2) == 0, fmt.Sprintf("step %d", step))
		case op == 8:
			e := pick()
			_, _, _, err = f.fin.Delete(ctx, f.admin, e.kind, e.id)
		default:
			e := pick()
			var req domain.ID
			_, req, _, err = f.fin.Delete(ctx, f.mgr, e.kind, e.id)
			if err == nil {
				_, _, err = f.fin.DecideDeletion(ctx, f.admin, req, rng.IntN(2) == 0)
			}
		}
		// A conflict (the gate, a decided row) and a row deleted earlier
		// are expected answers; anything else is a failure.
		if err != nil && !errors.Is(err, domain.ErrConflict) && !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("step %d: %v", step, err)
		}
	}
	checked, mismatches, err := f.fin.CheckFold(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	if checked != len(ents) || len(mismatches) != 0 {
		t.Fatalf("checked %d of %d rows; mismatches %+v", checked, len(ents), mismatches)
	}
	// CheckFolds over every organization agrees.
	total, bad, err := f.fin.CheckFolds(ctx, domain.ID{})
	if err != nil || total != len(ents) || len(bad) != 0 {
		t.Fatalf("CheckFolds: %d checked, %+v, %v", total, bad, err)
	}
	// A direct load agrees too, and a deleted row folds to absent.
	var deleted, present int
	for _, e := range ents {
		got, exists, err := f.fin.Load(ctx, f.org, e.kind, e.id)
		if err != nil {
			t.Fatal(err)
		}
		row, gerr := f.fin.Get(ctx, f.admin, e.kind, e.id)
		if gerr != nil && !errors.Is(gerr, domain.ErrNotFound) {
			t.Fatal(gerr)
		}
		if exists != (gerr == nil) {
			t.Fatalf("%s %s: fold exists=%v, Get %v", e.kind, e.id, exists, gerr)
		}
		if exists {
			present++
			if !same(got, row) {
				t.Fatalf("%s: fold %+v, table %+v", e.id, got, row)
			}
		} else {
			deleted++
		}
	}
	t.Logf("%d rows folded: %d present, %d deleted", len(ents), present, deleted)
}

// TestCheckFoldFindsDrift: a table row changed behind the write path's
// back, and a row without events, are mismatches naming the field.
func TestCheckFoldFindsDrift(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	r := f.create(t, f.admin, domain.Revenue, input(domain.Revenue, f.prop, 5000))
	if _, err := f.pool.Exec(ctx, `UPDATE transactions SET amount_cents = 5001 WHERE org_id = $1 AND id = $2`, f.org, r.ID); err != nil {
		t.Fatal(err)
	}
	checked, mm, err := f.fin.CheckFold(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	if checked != 1 || len(mm) != 1 || mm[0].ID != r.ID || mm[0].Kind != domain.Revenue ||
		mm[0].Detail != "amountCents: fold 5000, table 5001; " {
		t.Fatalf("checked %d, mismatches %+v", checked, mm)
	}
	// A copy of the row under a new id: a row the event store knows nothing of.
	ghost := domain.NewID(time.Now())
	if _, err := f.pool.Exec(ctx, `INSERT INTO transactions
		SELECT (jsonb_populate_record(t, jsonb_build_object('id', $3::uuid))).* FROM transactions t WHERE org_id = $1 AND id = $2`,
		f.org, r.ID, ghost); err != nil {
		t.Fatal(err)
	}
	checked, mm, err = f.fin.CheckFold(ctx, f.org)
	if err != nil || checked != 1 || len(mm) != 2 {
		t.Fatalf("with a row without events: checked %d, %+v, %v", checked, mm, err)
	}
	if !slices.ContainsFunc(mm, func(m finance.FoldMismatch) bool { return m.ID == ghost && m.Detail == "a row without events" }) {
		t.Fatalf("the row without events is not named: %+v", mm)
	}
	_, _, err = f.fin.Load(ctx, f.org, domain.Revenue, ghost)
	domaintest.MustErr(t, err, domain.ErrNotFound)
}

// TestFoldRefusesBrokenHistories: Fold wants versions 1, 2, ... and
// events of one kind of row that begin with its creation.
func TestFoldRefusesBrokenHistories(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.create(t, f.admin, domain.Expense, input(domain.Expense, f.prop, 5000))
	if _, _, err := f.fin.Update(t.Context(), f.admin, domain.Expense, r.ID, finance.PatchInput{AmountCents: ptr(int64(10))}); err != nil {
		t.Fatal(err)
	}
	evs := f.events(t, domain.Expense, r.ID)
	if got, exists, err := finance.Fold(evs); err != nil || !exists || got.AmountCents != 10 || got.Version != 2 {
		t.Fatalf("fold = %+v, %v, %v", got, exists, err)
	}
	for name, broken := range map[string][]domain.Event{
		"a missing version":     {evs[1]},
		"versions out of order": {evs[1], evs[0]},
	} {
		if _, _, err := finance.Fold(broken); err == nil {
			t.Errorf("%s: folded", name)
		}
	}
	wrongKind := evs[0]
	wrongKind.Type = domain.TransactionEvent(domain.Revenue, domain.ActionAdded)
	if _, _, err := finance.Fold([]domain.Event{wrongKind}); err == nil {
		t.Error("a revenue event folded into an expense")
	}
}
