package finance_test

import (
	"sync/atomic"
	"testing"

	"hmp/internal/domain"
	"hmp/internal/finance"
)

// OnCommit's listener (the relay's Wake) hears every committed write and
// nothing of a refused one.
func TestOnCommit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var commits atomic.Int64
	fin := finance.New(f.pool, f.ten, f.clock.Now, finance.OnCommit(func() { commits.Add(1) }))
	ctx := t.Context()
	row, _, err := fin.Create(ctx, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, 5000))
	if err != nil {
		t.Fatal(err)
	}
	if got := commits.Load(); got != 1 {
		t.Fatalf("after a create: %d commits heard, want 1", got)
	}
	if _, _, err := fin.Review(ctx, f.admin, domain.Revenue, row.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fin.Create(ctx, f.mgr, domain.Revenue, input(domain.Revenue, f.prop, -1)); err == nil {
		t.Fatal("a negative amount was accepted")
	}
	if _, _, err := fin.Review(ctx, f.admin, domain.Revenue, row.ID, true, ""); err == nil {
		t.Fatal("a second approval was accepted")
	}
	if got := commits.Load(); got != 2 {
		t.Fatalf("after a create, an approval and two refused writes: %d commits heard, want 2", got)
	}
}
