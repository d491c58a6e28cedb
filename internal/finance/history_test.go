package finance_test

import (
	"testing"

	"hmp/internal/domain"
	"hmp/internal/domain/domaintest"
	"hmp/internal/finance"
	"hmp/internal/tenancy"
)

// TestRowHistory: the audit trail of a row names who changed what, with
// each change's before and after; it outlives the row's deletion, and is
// visible exactly to those who may read the row.
func TestRowHistory(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	other := f.property(t, "Unassigned", "")
	stranger := f.manager(t, "stranger@seaside.test", other)
	org, owner, err := f.ten.Signup(ctx, tenancy.SignupInput{OrgName: "Outsiders", Email: "owner@outsiders.test", Password: "correct horse", DisplayName: "Owner"})
	if err != nil {
		t.Fatal(err)
	}
	outsider := domain.Actor{OrgID: org.ID, UserID: owner.ID, Role: domain.Admin}

	r := f.create(t, f.mgr, domain.Expense, input(domain.Expense, f.prop, 1200))
	if _, _, err := f.fin.Update(ctx, f.mgr, domain.Expense, r.ID, finance.PatchInput{AmountCents: ptr(int64(1500)), Description: ptr("mops")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.fin.Review(ctx, f.admin, domain.Expense, r.ID, true, "fine"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.fin.Update(ctx, f.admin, domain.Expense, r.ID, finance.PatchInput{PaymentMode: ptr(domain.Bank)}); err != nil {
		t.Fatal(err)
	}

	history := func(actor domain.Actor) []finance.Change {
		t.Helper()
		h, err := f.fin.History(ctx, actor, domain.Expense, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// fields maps each changed field to its before and after, as JSON
	// numbers and strings (what the history API renders).
	fields := func(cs []finance.FieldChange) map[string][2]any {
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
		action  domain.Action
		user    domain.ID
		changed map[string][2]any
	}{
		{domain.ActionAdded, f.mgr.UserID, nil},
		{domain.ActionUpdated, f.mgr.UserID, map[string][2]any{"amountCents": {1200.0, 1500.0}, "description": {nil, "mops"}}},
		{domain.ActionApproved, f.admin.UserID, map[string][2]any{"status": {"pending", "approved"}}},
		{domain.ActionUpdated, f.admin.UserID, map[string][2]any{"paymentMode": {"cash", "bank"}}},
	}
	for i, w := range want {
		e := h[i]
		if e.Version != i+1 || e.Action != w.action || e.UserID != w.user {
			t.Fatalf("entry %d = v%d %s by %s, want v%d %s by %s", i, e.Version, e.Action, e.UserID, i+1, w.action, w.user)
		}
		if i == 0 {
			if e.Before != nil || e.After == nil || e.After.AmountCents != 1200 {
				t.Fatalf("creation entry: %+v", e)
			}
			continue
		}
		got := fields(e.Fields)
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

	// Not readable, no trail: another tenant, a manager of another
	// property, the other kind.
	for _, actor := range []domain.Actor{outsider, stranger} {
		_, err := f.fin.History(ctx, actor, domain.Expense, r.ID)
		domaintest.MustErr(t, err, domain.ErrNotFound)
	}
	_, err = f.fin.History(ctx, f.admin, domain.Revenue, r.ID)
	domaintest.MustErr(t, err, domain.ErrNotFound)

	// The trail outlives the row.
	if _, _, _, err := f.fin.Delete(ctx, f.admin, domain.Expense, r.ID); err != nil {
		t.Fatal(err)
	}
	h = history(f.admin)
	last := h[len(h)-1]
	if len(h) != 5 || last.Action != domain.ActionDeleted || last.After != nil || last.Before == nil || last.Before.PaymentMode != domain.Bank {
		t.Fatalf("after delete: %+v", h)
	}
}
