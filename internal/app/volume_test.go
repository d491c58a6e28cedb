package app_test

import (
	"context"
	"testing"

	"hmp/internal/domain"
)

// An organization's gross volume is capped (domain.MaxOrgVolumeCents) so
// that no report figure can leave int64: a create, an edit or an approval
// that would pass the cap is a 422 naming body.amountCents and writes
// nothing; one that reaches it exactly is fine; other organizations are
// not affected. Before the cap, 9,224 maximal revenues broke the
// projection of their month.
func TestOrganizationVolumeCap(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	volume := func(org string) int64 {
		t.Helper()
		var v int64
		if err := f.env.App.Pool.QueryRow(ctx, `SELECT COALESCE(sum(gross_cents), 0)::bigint FROM org_volume_slots WHERE org_id = $1`, org).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// setVolume fills slots 1-15 and puts the rest of v in slot 0.
	const slotCap = domain.MaxOrgVolumeCents / 16
	setVolume := func(v int64) {
		t.Helper()
		if _, err := f.env.App.Pool.Exec(ctx, `UPDATE org_volume_slots SET gross_cents = CASE WHEN slot = 0 THEN $2::bigint ELSE $3::bigint END
			WHERE org_id = $1`, f.org.ID, v-15*slotCap, slotCap); err != nil {
			t.Fatal(err)
		}
	}
	events := func() int64 {
		t.Helper()
		var n int64
		if err := f.env.App.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE org_id = $1`, f.org.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	refused := func(method, path, token string, body any) {
		t.Helper()
		before := events()
		p := mustProblem(t, f.env.Do(method, path, token, body), 422)
		mustLocations(t, p, "body.amountCents")
		if after := events(); after != before {
			t.Fatalf("a refused write appended %d events", after-before)
		}
	}

	// Every counted write adds its amount: a create by an ADMIN
	// (approved), a MANAGER's (pending), its approval, an edit.
	r := create(f.env, f.org.AdminToken, "revenue", txn(f.prop, 5000))
	if v := volume(f.org.ID); v != 5000 {
		t.Fatalf("volume after a create = %d, want 5000", v)
	}
	pending := create(f.env, f.mgr, "expense", txn(f.prop, 700))
	f.env.Must(200, "PATCH", "/v1/finance/revenues/"+r.ID, f.org.AdminToken, map[string]any{"amountCents": 6000})
	if v := volume(f.org.ID); v != 5000+700+6000 {
		t.Fatalf("volume = %d, want %d", v, 5000+700+6000)
	}

	const max = domain.MaxAmountCents
	t.Run("a create past the cap is refused", func(t *testing.T) {
		setVolume(domain.MaxOrgVolumeCents - max + 1)
		refused("POST", "/v1/finance/revenues", f.org.AdminToken, withKind("revenue", txn(f.prop, max)))
		refused("POST", "/v1/finance/expenses", f.mgr, withKind("expense", txn(f.prop, max)))
		if v := volume(f.org.ID); v != domain.MaxOrgVolumeCents-max+1 {
			t.Fatalf("volume moved to %d on a refused write", v)
		}
	})
	t.Run("an edit and an approval past the cap are refused", func(t *testing.T) {
		setVolume(domain.MaxOrgVolumeCents - 699)
		refused("POST", "/v1/finance/expenses/"+pending.ID+"/approve", f.org.AdminToken, map[string]any{})
		refused("PATCH", "/v1/finance/revenues/"+r.ID, f.org.AdminToken, map[string]any{"amountCents": 700})
		if got := get(f.env, f.org.AdminToken, "expense", pending.ID); got.Status != "pending" {
			t.Fatalf("refused approval left the row %s", got.Status)
		}
		if got := get(f.env, f.org.AdminToken, "revenue", r.ID); got.AmountCents != 6000 {
			t.Fatalf("refused edit left the amount %d", got.AmountCents)
		}
	})
	t.Run("reaching the cap exactly is allowed; rejecting and deleting add nothing", func(t *testing.T) {
		setVolume(domain.MaxOrgVolumeCents - 700)
		f.env.Must(200, "POST", "/v1/finance/expenses/"+pending.ID+"/approve", f.org.AdminToken, map[string]any{})
		if v := volume(f.org.ID); v != domain.MaxOrgVolumeCents {
			t.Fatalf("volume = %d, want the cap", v)
		}
		f.env.Must(204, "DELETE", "/v1/finance/revenues/"+r.ID, f.org.AdminToken, nil)
		refused("POST", "/v1/finance/revenues", f.org.AdminToken, withKind("revenue", txn(f.prop, 1)))
	})
	t.Run("another organization is not affected", func(t *testing.T) {
		other := f.env.Signup("Other Stays")
		prop := f.env.Property(other.AdminToken, "Hill View", "")
		create(f.env, other.AdminToken, "revenue", txn(prop, max))
		if v := volume(other.ID); v != max {
			t.Fatalf("other organization's volume = %d, want %d", v, max)
		}
	})
}
