package cache_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/cache"
	"hmp/internal/knobs"
)

// TestTune: the live settings resize the in-process tier and switch the
// invalidation mode; a refused part (an unknown mode) leaves the other
// applied and names itself.
func TestTune(t *testing.T) {
	c := newCache(t, cache.Config{Entries: 100, Invalidation: cache.ModeAsync}, prometheus.NewRegistry())
	if err := c.Tune(knobs.Cache{Entries: 7, Invalidation: cache.ModeSync}); err != nil {
		t.Fatal(err)
	}
	if c.Entries() != 7 {
		t.Fatalf("entries = %d, want 7", c.Entries())
	}
	err := c.Tune(knobs.Cache{Entries: 9, Invalidation: "eventually"})
	if err == nil {
		t.Fatal("an unknown invalidation mode was accepted")
	}
	if c.Entries() != 9 {
		t.Fatalf("entries = %d, want 9 applied beside the refused mode (%v)", c.Entries(), err)
	}
	if err := c.Tune(knobs.Cache{Entries: 0, Invalidation: cache.ModeAsync}); err == nil {
		t.Fatal("zero entries were accepted: the live settings keep at least 1")
	}
	var off *cache.Cache
	if err := off.Tune(knobs.Cache{Entries: 5, Invalidation: cache.ModeAsync}); err == nil {
		t.Fatal("resizing an off cache must say it cannot")
	}
}
