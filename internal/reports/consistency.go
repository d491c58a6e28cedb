package reports

import (
	"context"
	"fmt"
	"time"

	"hmp/internal/domain"
)

// Progress is what the consistency wait needs: whether the relay has
// published everything committed so far (and up to which stream
// sequence), and how far the projector has acknowledged.
type Progress interface {
	Covered(ctx context.Context) (bool, uint64, error)
	AckFloor(ctx context.Context) (uint64, error)
}

// Waiter makes a read reflect every write committed before it started.
type Waiter struct {
	progress Progress
	timeout  time.Duration
}

// NewWaiter returns a Waiter giving up after timeout (default 5 s).
func NewWaiter(p Progress, timeout time.Duration) *Waiter {
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	return &Waiter{progress: p, timeout: timeout}
}

// Wait blocks until every write committed before the call is in the
// projection: first the relay must have published it (the check takes its
// own snapshot, so any token handed out earlier is covered), then the
// projector must have acknowledged that far. A token handed out for an
// earlier write therefore needs no value of its own here. It answers
// ErrUnavailable after the timeout, never stale data.
func (w *Waiter) Wait(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	delay := time.Millisecond
	covered := false
	var target uint64
	for {
		if !covered {
			ok, seq, err := w.progress.Covered(ctx)
			if err != nil && ctx.Err() == nil {
				return err
			}
			covered, target = ok, seq
		}
		if covered {
			floor, err := w.progress.AckFloor(ctx)
			if err != nil && ctx.Err() == nil {
				return err
			}
			if err == nil && floor >= target {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: the write is not reflected in reports yet; retry shortly", domain.ErrUnavailable)
		case <-time.After(delay):
		}
		delay = min(delay*2, 25*time.Millisecond)
	}
}
