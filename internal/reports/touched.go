package reports

import (
	"hmp/internal/cache"
	"hmp/internal/domain"
)

// Touched is the earliest business date a committed projector batch changed for one
// property: the reports of that date and every later one of the property are stale.
type Touched struct {
	OrgID, PropertyID domain.ID
	From              domain.Date
}

// CacheChanges are touched as the report cache's invalidations.
func CacheChanges(touched []Touched) []cache.Change {
	changes := make([]cache.Change, len(touched))
	for i, t := range touched {
		changes[i] = cache.Change{OrgID: t.OrgID, PropertyID: t.PropertyID, From: t.From}
	}
	return changes
}
