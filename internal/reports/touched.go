package reports

import "hmp/internal/domain"

// Touched is the earliest business date a committed projector batch changed for one
// property: the reports of that date and every later one of the property are stale.
type Touched struct {
	OrgID, PropertyID domain.ID
	From              domain.Date
}
