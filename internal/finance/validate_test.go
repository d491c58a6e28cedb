package finance_test

import (
	"strings"
	"testing"
	"time"

	"hmp/internal/domain"
	"hmp/internal/domain/domaintest"
	"hmp/internal/finance"
)

// TestCreateValidation: a create that breaks a rule is a validation error
// naming every bad field, and writes nothing; the limits themselves are
// accepted.
func TestCreateValidation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	long := func(n int) *string { s := strings.Repeat("x", n); return &s }
	for _, tc := range []struct {
		name   string
		kind   domain.Kind
		change func(*finance.CreateInput)
		fields []string // nil: accepted
	}{
		{"no property", domain.Revenue, func(in *finance.CreateInput) { in.PropertyID = domain.ID{} }, []string{"propertyId"}},
		{"an unknown source", domain.Revenue, func(in *finance.CreateInput) { in.Source = "minibar" }, []string{"source"}},
		{"a revenue with a category", domain.Revenue, func(in *finance.CreateInput) { in.Category = "supplies" }, []string{"category"}},
		{"an expense without a category", domain.Expense, func(in *finance.CreateInput) { in.Category = "  " }, []string{"category"}},
		{"an expense with a source", domain.Expense, func(in *finance.CreateInput) { in.Source = "room" }, []string{"source"}},
		{"a category of 101 characters", domain.Expense, func(in *finance.CreateInput) { in.Category = *long(101) }, []string{"category"}},
		{"a category of 100 characters", domain.Expense, func(in *finance.CreateInput) { in.Category = *long(100) }, nil},
		{"a zero amount", domain.Revenue, func(in *finance.CreateInput) { in.AmountCents = 0 }, []string{"amountCents"}},
		{"a negative amount", domain.Expense, func(in *finance.CreateInput) { in.AmountCents = -1 }, []string{"amountCents"}},
		{"an amount past the maximum", domain.Revenue, func(in *finance.CreateInput) { in.AmountCents = domain.MaxAmountCents + 1 }, []string{"amountCents"}},
		{"the maximum amount", domain.Revenue, func(in *finance.CreateInput) { in.AmountCents = domain.MaxAmountCents }, nil},
		{"an unknown payment mode", domain.Revenue, func(in *finance.CreateInput) { in.PaymentMode = "card" }, []string{"paymentMode"}},
		{"no occurredAt", domain.Revenue, func(in *finance.CreateInput) { in.OccurredAt = time.Time{} }, []string{"occurredAt"}},
		{"before 2000", domain.Revenue, func(in *finance.CreateInput) { in.OccurredAt = time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC) }, []string{"occurredAt"}},
		{"more than a year ahead", domain.Expense, func(in *finance.CreateInput) { in.OccurredAt = baseTime.AddDate(1, 0, 0).Add(time.Second) }, []string{"occurredAt"}},
		{"a description of 1001 characters", domain.Revenue, func(in *finance.CreateInput) { in.Description = long(1001) }, []string{"description"}},
		{"a description of 1000 characters", domain.Revenue, func(in *finance.CreateInput) { in.Description = long(1000) }, nil},
		{"a bank reference of 101 characters", domain.Revenue, func(in *finance.CreateInput) { in.BankReference = long(101) }, []string{"bankReference"}},
		{"a NUL in the description", domain.Expense, func(in *finance.CreateInput) { in.Description = ptr("a\x00b") }, []string{"description"}},
		{"a NUL in the category", domain.Expense, func(in *finance.CreateInput) { in.Category = "a\x00b" }, []string{"category"}},
		{"everything wrong at once", domain.Revenue, func(in *finance.CreateInput) {
			in.Source, in.Category, in.AmountCents, in.PaymentMode, in.OccurredAt = "", "x", 0, "", time.Time{}
		}, []string{"source", "category", "amountCents", "paymentMode", "occurredAt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input(tc.kind, f.prop, 500)
			tc.change(&in)
			before := orgEvents(t, f.pool, f.org)
			r, _, err := f.tryCreate(ctx, f.admin, tc.kind, in)
			if tc.fields == nil {
				if err != nil || r.Version != 1 {
					t.Fatalf("create: %+v, %v; want it accepted", r, err)
				}
				return
			}
			domaintest.MustFields(t, err, tc.fields...)
			if after := orgEvents(t, f.pool, f.org); after != before {
				t.Fatalf("a refused create wrote %d events", after-before)
			}
		})
	}

	t.Run("an unknown property names the field", func(t *testing.T) {
		_, _, err := f.tryCreate(ctx, f.admin, domain.Revenue, input(domain.Revenue, ghostID, 500))
		mustNotFoundField(t, err, "propertyId")
	})
}

// TestPatchValidation: a patch is checked as the whole row it leaves, so
// it names the fields it broke; a refused patch changes nothing.
func TestPatchValidation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	rev := f.create(t, f.admin, domain.Revenue, input(domain.Revenue, f.prop, 500))
	exp := f.create(t, f.admin, domain.Expense, input(domain.Expense, f.prop, 500))
	for _, tc := range []struct {
		name   string
		row    finance.Transaction
		patch  finance.PatchInput
		fields []string
	}{
		{"a zero amount", rev, finance.PatchInput{AmountCents: ptr(int64(0))}, []string{"amountCents"}},
		{"a revenue given a category", rev, finance.PatchInput{Category: ptr("supplies")}, []string{"category"}},
		{"an expense's category blanked", exp, finance.PatchInput{Category: ptr("")}, []string{"category"}},
		{"an unknown payment mode and source", rev, finance.PatchInput{PaymentMode: ptr(domain.PaymentMode("card")), Source: ptr("bar")}, []string{"paymentMode", "source"}},
		{"occurredAt before 2000", exp, finance.PatchInput{OccurredAt: ptr(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC))}, []string{"occurredAt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.fin.Update(ctx, f.admin, tc.row.Kind, tc.row.ID, tc.patch)
			domaintest.MustFields(t, err, tc.fields...)
			if got := f.get(t, tc.row.Kind, tc.row.ID); !same(got, tc.row) {
				t.Fatalf("a refused patch changed the row: %+v, was %+v", got, tc.row)
			}
		})
	}
	t.Run("a property the MANAGER may not see names the field", func(t *testing.T) {
		other := f.property(t, "Elsewhere", "")
		_, _, err := f.fin.Update(ctx, f.mgr, domain.Revenue, rev.ID, finance.PatchInput{PropertyID: &other})
		mustNotFoundField(t, err, "propertyId")
	})
	t.Run("review notes are bounded", func(t *testing.T) {
		pending := f.create(t, f.mgr, domain.Expense, input(domain.Expense, f.prop, 500))
		_, _, err := f.fin.Review(ctx, f.admin, domain.Expense, pending.ID, true, strings.Repeat("n", 1001))
		domaintest.MustFields(t, err, "notes")
		_, _, err = f.fin.Review(ctx, f.admin, domain.Expense, pending.ID, false, "a\x00b")
		domaintest.MustFields(t, err, "notes")
		if got := f.get(t, domain.Expense, pending.ID); got.Status != domain.Pending || got.Version != 1 {
			t.Fatalf("refused reviews changed the row: %+v", got)
		}
	})
}
