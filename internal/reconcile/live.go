package reconcile

import (
	"fmt"
	"sync/atomic"
)

// liveMode is the correction mode switched at run time; unset, the
// configured one holds.
type liveMode struct{ p atomic.Pointer[string] }

// SetMode switches how corrections are written (ModeRow or ModeBatch) from
// the next batch on, without waiting for the batch being written (which
// may be retrying against a database that is away).
func (b *CorrectionBatcher) SetMode(mode string) error {
	if mode != ModeBatch && mode != ModeRow {
		return fmt.Errorf("corrections mode must be %q or %q, got %q", ModeBatch, ModeRow, mode)
	}
	b.live.p.Store(&mode)
	return nil
}

// mode is the correction mode in force.
func (b *CorrectionBatcher) mode() string {
	if m := b.live.p.Load(); m != nil {
		return *m
	}
	return b.cfg.Mode
}
