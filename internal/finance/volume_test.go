package finance_test

import (
	"context"
	"testing"

	"hmp/internal/domain"
	"hmp/internal/domain/domaintest"
	"hmp/internal/finance"
	"hmp/internal/tenancy"
)

// An organization's gross volume is capped (domain.MaxOrgVolumeCents) so
// that no report figure can leave int64: a create, an edit or an approval
// that would pass the cap is a validation error naming amountCents and
// writes nothing; one that reaches it exactly is fine; other organizations
// are not affected. Before the cap, 9,224 maximal revenues broke the
// projection of their month.
func TestOrganizationVolumeCap(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	volume := func(org domain.ID) int64 {
		t.Helper()
		var v int64
		if err := f.pool.QueryRow(ctx, `SELECT COALESCE(sum(gross_cents), 0)::bigint FROM org_volume_slots WHERE org_id = $1`, org).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// setVolume fills slots 1-15 and puts the rest of v in slot 0.
	const slotCap = domain.MaxOrgVolumeCents / 16
	setVolume := func(v int64) {
		t.Helper()
		if _, err := f.pool.Exec(ctx, `UPDATE org_volume_slots SET gross_cents = CASE WHEN slot = 0 THEN $2::bigint ELSE $3::bigint END
			WHERE org_id = $1`, f.org, v-15*slotCap, slotCap); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(err error) {
		t.Helper()
		domaintest.MustFields(t, err, "amountCents")
	}
	noEvents := func(before int) {
		t.Helper()
		if after := orgEvents(t, f.pool, f.org); after != before {
			t.Fatalf("a refused write appended %d events", after-before)
		}
	}

	// Every counted write adds its amount: a create by an ADMIN
	// (approved), a MANAGER's (pending), its approval, an edit.
	r := f.create(t, f.admin, domain.Revenue, input(domain.Revenue, f.prop, 5000))
	if v := volume(f.org); v != 5000 {
		t.Fatalf("volume after a create = %d, want 5000", v)
	}
	pending := f.create(t, f.mgr, domain.Expense, input(domain.Expense, f.prop, 700))
	if _, _, err := f.fin.Update(ctx, f.admin, domain.Revenue, r.ID, finance.PatchInput{AmountCents: ptr(int64(6000))}); err != nil {
		t.Fatal(err)
	}
	if v := volume(f.org); v != 5000+700+6000 {
		t.Fatalf("volume = %d, want %d", v, 5000+700+6000)
	}

	const max = domain.MaxAmountCents
	t.Run("a create past the cap is refused", func(t *testing.T) {
		setVolume(domain.MaxOrgVolumeCents - max + 1)
		before := orgEvents(t, f.pool, f.org)
		_, _, err := f.tryCreate(ctx, f.admin, domain.Revenue, input(domain.Revenue, f.prop, max))
		refused(err)
		_, _, err = f.tryCreate(ctx, f.mgr, domain.Expense, input(domain.Expense, f.prop, max))
		refused(err)
		noEvents(before)
		if v := volume(f.org); v != domain.MaxOrgVolumeCents-max+1 {
			t.Fatalf("volume moved to %d on a refused write", v)
		}
	})
	t.Run("an edit and an approval past the cap are refused", func(t *testing.T) {
		setVolume(domain.MaxOrgVolumeCents - 699)
		before := orgEvents(t, f.pool, f.org)
		_, _, err := f.fin.Review(ctx, f.admin, domain.Expense, pending.ID, true, "")
		refused(err)
		_, _, err = f.fin.Update(ctx, f.admin, domain.Revenue, r.ID, finance.PatchInput{AmountCents: ptr(int64(700))})
		refused(err)
		noEvents(before)
		if got := f.get(t, domain.Expense, pending.ID); got.Status != domain.Pending {
			t.Fatalf("refused approval left the row %s", got.Status)
		}
		if got := f.get(t, domain.Revenue, r.ID); got.AmountCents != 6000 {
			t.Fatalf("refused edit left the amount %d", got.AmountCents)
		}
	})
	t.Run("reaching the cap exactly is allowed; rejecting and deleting add nothing", func(t *testing.T) {
		setVolume(domain.MaxOrgVolumeCents - 700)
		if _, _, err := f.fin.Review(ctx, f.admin, domain.Expense, pending.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		if v := volume(f.org); v != domain.MaxOrgVolumeCents {
			t.Fatalf("volume = %d, want the cap", v)
		}
		if deleted, _, _, err := f.fin.Delete(ctx, f.admin, domain.Revenue, r.ID); err != nil || !deleted {
			t.Fatalf("delete at the cap: %v %v", deleted, err)
		}
		if v := volume(f.org); v != domain.MaxOrgVolumeCents {
			t.Fatalf("volume after a delete = %d, want the cap", v)
		}
		before := orgEvents(t, f.pool, f.org)
		_, _, err := f.tryCreate(ctx, f.admin, domain.Revenue, input(domain.Revenue, f.prop, 1))
		refused(err)
		noEvents(before)
	})
	t.Run("another organization is not affected", func(t *testing.T) {
		org, admin, err := f.ten.Signup(ctx, tenancy.SignupInput{OrgName: "Other Stays", Email: "owner@other.test", Password: "correct horse", DisplayName: "Owner"})
		if err != nil {
			t.Fatal(err)
		}
		actor := domain.Actor{OrgID: org.ID, UserID: admin.ID, Role: domain.Admin}
		prop, err := f.ten.CreateProperty(ctx, actor, tenancy.PropertyInput{Name: "Hill View", Type: "hotel"})
		if err != nil {
			t.Fatal(err)
		}
		f.create(t, actor, domain.Revenue, input(domain.Revenue, prop.ID, max))
		if v := volume(org.ID); v != max {
			t.Fatalf("other organization's volume = %d, want %d", v, max)
		}
	})
}
