package cache_test

import (
	"context"
	"testing"
	"time"

	"hmp/internal/cache"
)

// A load that was read on a lagging replica says how old its data may be:
// a change after that (but before the load) makes the entry stale, as it
// would had the load really run then; without AsOf the same change
// arriving late leaves the entry alone.
func TestAsOfEntryCountsAsComputedThen(t *testing.T) {
	t.Parallel()
	for _, mk := range tiers(t) {
		tr := mk(t)
		t.Run(tr.name, func(t *testing.T) {
			k := key("asof", today, propP)
			changed := time.Now().Add(-time.Second)
			_, err := cache.Fetch(context.Background(), tr.writer, k, false, func(ctx context.Context) (report, error) {
				cache.AsOf(ctx, changed.Add(-time.Second)) // the replica had not replayed the change
				return report{Date: today, Cents: 1}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			fresh := key("current", today, propP)
			fetch(t, tr.writer, fresh, &loader{cents: 1})
			tr.apply(cache.Change{OrgID: org, PropertyID: propP, From: today, At: changed})
			if got := fetch(t, tr.reader, k, &loader{cents: 2}); got.Cents != 2 {
				t.Errorf("an entry read as of before the change was served: %+v", got)
			}
			if got := fetch(t, tr.reader, fresh, &loader{cents: 2}); got.Cents != 1 {
				t.Errorf("an entry computed after the change was dropped: %+v", got)
			}
		})
	}
}
