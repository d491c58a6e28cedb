package cache

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"hmp/internal/knobs"
)

// liveSettings are the settings switched at run time; unset, the
// configured ones hold.
type liveSettings struct {
	invalidation atomic.Pointer[string]
}

// invalidation is the invalidation mode in force.
func (c *Cache) invalidation() string {
	if m := c.live.invalidation.Load(); m != nil {
		return *m
	}
	return c.cfg.Invalidation
}

// SetEntries resizes the in-process tier to hold at most n reports (n ≥ 1);
// shrinking evicts the least valuable entries.
func (c *Cache) SetEntries(n int) error {
	if c == nil {
		return fmt.Errorf("the report cache is off: it cannot be resized")
	}
	if n < 1 {
		return fmt.Errorf("cache entries must be at least 1, got %d", n)
	}
	c.mem.SetMaximum(uint64(n))
	return nil
}

// Entries returns the most reports the in-process tier holds now.
func (c *Cache) Entries() int {
	if c == nil {
		return 0
	}
	return int(c.mem.GetMaximum())
}

// SetInvalidation switches the invalidation mode (ModeSync or ModeAsync).
// An announcement this instance published under the old mode may arrive
// under the new one and be skipped as already applied (async to sync):
// so every entry computed before the switch is distrusted, as after a
// reconnect. A cold cache costs reads; a skipped invalidation would cost
// a stale report.
func (c *Cache) SetInvalidation(mode string) error {
	if mode != ModeSync && mode != ModeAsync {
		return fmt.Errorf("cache invalidation must be %q or %q, got %q", ModeSync, ModeAsync, mode)
	}
	if c == nil || c.invalidation() == mode {
		return nil
	}
	c.live.invalidation.Store(&mode)
	c.trustFrom.Store(time.Now().UnixNano())
	return nil
}

// Tune puts the live settings' cache knobs in force: both parts are
// applied even when one is refused.
func (c *Cache) Tune(k knobs.Cache) error {
	return errors.Join(c.SetEntries(k.Entries), c.SetInvalidation(k.Invalidation))
}
