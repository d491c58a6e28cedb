package cache

import (
	"context"
	"sync"
	"time"
)

type asOfKey struct{}

// asOf is where a loader notes how old its data may be.
type asOf struct {
	mu sync.Mutex
	t  time.Time
}

// AsOf tells the Fetch whose loader runs under ctx that the data loaded
// may miss changes committed after t (it was read on a replica that may
// lag): the entry then counts as computed at t, so that the exact
// invalidation still drops it if a change came after t, and its TTL runs
// from t. Outside a loader it does nothing.
func AsOf(ctx context.Context, t time.Time) {
	h, ok := ctx.Value(asOfKey{}).(*asOf)
	if !ok {
		return
	}
	h.mu.Lock()
	if h.t.IsZero() || t.Before(h.t) {
		h.t = t
	}
	h.mu.Unlock()
}

func withAsOf(ctx context.Context) (context.Context, *asOf) {
	h := &asOf{}
	return context.WithValue(ctx, asOfKey{}, h), h
}

// adjust returns the earlier of at and what the loader noted.
func (h *asOf) adjust(at time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.t.IsZero() && h.t.Before(at) {
		return h.t
	}
	return at
}
