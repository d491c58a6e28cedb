package finance_test

import (
	"errors"
	"sync"
	"testing"

	"hmp/internal/domain"
	"hmp/internal/domain/domaintest"
	"hmp/internal/finance"
)

// TestIfMatch: a row's version is its entity tag; a change with a stale
// If-Match is ErrPreconditionFailed and writes nothing (no event, no
// change, no deletion request); a matching one proceeds; none keeps
// last-writer-wins.
func TestIfMatch(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	admin := f.admin
	pre := finance.ParseIfMatch

	rev := f.create(t, admin, domain.Revenue, input(domain.Revenue, f.prop, 5000))
	if got := finance.ETag(rev.Version); got != `"1"` {
		t.Fatalf("create ETag = %q, want \"1\"", got)
	}
	update := func(tag string, amount int64) (finance.Transaction, error) {
		r, _, err := f.fin.UpdateIf(ctx, admin, domain.Revenue, rev.ID, finance.PatchInput{AmountCents: &amount}, pre(tag))
		return r, err
	}

	t.Run("a matching If-Match proceeds", func(t *testing.T) {
		r, err := update(`"1"`, 6000)
		if err != nil || finance.ETag(r.Version) != `"2"` {
			t.Fatalf("PATCH: %+v, %v; want version 2", r, err)
		}
	})
	t.Run("a stale If-Match fails and writes nothing", func(t *testing.T) {
		before := len(f.events(t, domain.Revenue, rev.ID))
		for _, tag := range []string{`"1"`, `W/"1"`, `"1", "7"`, `"not-a-version"`} {
			_, err := update(tag, 9999)
			domaintest.MustErr(t, err, domain.ErrPreconditionFailed, `ETag "2"`)
		}
		_, _, _, err := f.fin.DeleteIf(ctx, admin, domain.Revenue, rev.ID, pre(`"1"`))
		domaintest.MustErr(t, err, domain.ErrPreconditionFailed)
		got := f.get(t, domain.Revenue, rev.ID)
		if got.AmountCents != 6000 || got.Version != 2 {
			t.Fatalf("row after refusals = %+v, want amount 6000 version 2", got)
		}
		if after := len(f.events(t, domain.Revenue, rev.ID)); after != before {
			t.Fatalf("events after refusals = %d, want %d", after, before)
		}
	})
	t.Run("a list of tags and * match", func(t *testing.T) {
		if _, err := update(`"1", W/"2"`, 6100); err != nil {
			t.Fatal(err)
		}
		r, err := update(`*`, 6200)
		if err != nil || finance.ETag(r.Version) != `"4"` {
			t.Fatalf("If-Match *: %+v, %v; want version 4", r, err)
		}
	})
	t.Run("without If-Match the last writer wins", func(t *testing.T) {
		if _, err := update("", 6300); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("decisions", func(t *testing.T) {
		pending := f.create(t, f.mgr, domain.Expense, input(domain.Expense, f.prop, 700))
		for _, approve := range []bool{true, false} {
			_, _, err := f.fin.ReviewIf(ctx, admin, domain.Expense, pending.ID, approve, "", pre(`"2"`))
			domaintest.MustErr(t, err, domain.ErrPreconditionFailed)
		}
		if got := f.get(t, domain.Expense, pending.ID); got.Status != domain.Pending || got.Version != 1 {
			t.Fatalf("row after refused decisions = %s v%d, want pending v1", got.Status, got.Version)
		}
		if n := len(f.events(t, domain.Expense, pending.ID)); n != 1 {
			t.Fatalf("events after refused decisions = %d, want 1", n)
		}
		r, _, err := f.fin.ReviewIf(ctx, admin, domain.Expense, pending.ID, true, "", pre(`"1"`))
		if err != nil || finance.ETag(r.Version) != `"2"` {
			t.Fatalf("approve: %+v, %v; want version 2", r, err)
		}
		// A manager's deletion request is refused too, and none is recorded.
		_, req, _, err := f.fin.DeleteIf(ctx, f.mgr, domain.Expense, pending.ID, pre(`"1"`))
		domaintest.MustErr(t, err, domain.ErrPreconditionFailed)
		if !req.IsZero() {
			t.Fatalf("a refused request has an id %s", req)
		}
		if _, req, _, err = f.fin.DeleteIf(ctx, f.mgr, domain.Expense, pending.ID, pre(`"2"`)); err != nil || req.IsZero() {
			t.Fatalf("a matching request: %v %v", req, err)
		}
		_, _, _, err = f.fin.DeleteIf(ctx, admin, domain.Expense, pending.ID, pre(`"1"`))
		domaintest.MustErr(t, err, domain.ErrPreconditionFailed)
		if deleted, _, _, err := f.fin.DeleteIf(ctx, admin, domain.Expense, pending.ID, pre(`"2"`)); err != nil || !deleted {
			t.Fatalf("a matching delete: %v %v", deleted, err)
		}
		_, err = f.fin.Get(ctx, admin, domain.Expense, pending.ID)
		domaintest.MustErr(t, err, domain.ErrNotFound)
	})

	t.Run("another tenant's row stays not found whatever the tag", func(t *testing.T) {
		other := domain.Actor{OrgID: ghostID, UserID: admin.UserID, Role: domain.Admin}
		_, _, err := f.fin.UpdateIf(ctx, other, domain.Revenue, rev.ID, finance.PatchInput{AmountCents: ptr(int64(1))}, pre(`"999"`))
		domaintest.MustErr(t, err, domain.ErrNotFound)
	})

	t.Run("of two concurrent edits from one version exactly one wins", func(t *testing.T) {
		cur := f.get(t, domain.Revenue, rev.ID)
		tag := finance.ETag(cur.Version)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { _, errs[i] = update(tag, int64(7000+i)) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, domain.ErrPreconditionFailed):
			default:
				t.Fatalf("concurrent update: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent updates with one If-Match won, want 1", won)
		}
		if got := f.get(t, domain.Revenue, rev.ID); got.Version != cur.Version+1 {
			t.Fatalf("version = %d, want %d", got.Version, cur.Version+1)
		}
	})
}

// TestParseIfMatch: the entity tags ETag renders, weak or strong, bare or
// in a list; anything else matches no version.
func TestParseIfMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header string
		want   []int // nil: asserts nothing
	}{
		{"", nil}, {"*", nil}, {" * ", nil},
		{`"3"`, []int{3}}, {`W/"3"`, []int{3}}, {"3", []int{3}},
		{`"1", W/"2" ,3`, []int{1, 2, 3}},
		{`"not-a-version"`, []int{}}, {`"0"`, []int{}}, {`"-1"`, []int{}},
	} {
		got := finance.ParseIfMatch(tc.header).Versions
		if (got == nil) != (tc.want == nil) || len(got) != len(tc.want) {
			t.Fatalf("ParseIfMatch(%q) = %#v, want %#v", tc.header, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("ParseIfMatch(%q) = %v, want %v", tc.header, got, tc.want)
			}
		}
	}
	if got := finance.ETag(12); got != `"12"` {
		t.Fatalf("ETag(12) = %s", got)
	}
}
