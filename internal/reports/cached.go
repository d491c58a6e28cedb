package reports

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"hmp/internal/cache"
	"hmp/internal/domain"
)

// WithCache makes s answer report reads through c (nil: straight from
// PostgreSQL) and returns s. Call it before serving.
//
// What is cached: daily-report, daily-reports, monthly-report and
// yearly-summary, for one property, and the organization-wide monthly
// report and yearly summary keyed by the caller's property set (a MANAGER
// and an ADMIN of one organization see different sets, hence different
// entries), made stale by a change of any property of the set. Reads with
// a consistency token skip the tiers (see package cache).
func (s *Service) WithCache(c *cache.Cache) *Service {
	s.cache = c
	return s
}

// cacheKey names a report read: kind, organization, properties, dates and
// whether pending rows count. end is the last date the report covers.
func cacheKey(kind string, org domain.ID, props []domain.ID, start, end, today domain.Date, includePending bool) cache.Key {
	var b strings.Builder
	b.WriteString(kind)
	b.WriteByte('|')
	b.WriteString(org.String())
	b.WriteByte('|')
	switch len(props) {
	case 1:
		b.WriteString(props[0].String())
	default:
		// The caller's property set, order-free and bounded in length.
		sorted := slices.Clone(props)
		slices.SortFunc(sorted, func(x, y domain.ID) int { return slices.Compare(x[:], y[:]) })
		h := sha256.New()
		for _, p := range sorted {
			h.Write(p[:])
		}
		b.WriteString("set:")
		b.WriteString(strconv.Itoa(len(props)))
		b.WriteByte(':')
		b.WriteString(hex.EncodeToString(h.Sum(nil)[:16]))
	}
	b.WriteByte('|')
	b.WriteString(start.String())
	b.WriteByte('|')
	b.WriteString(end.String())
	if includePending {
		b.WriteString("|p")
	}
	return cache.Key{ID: b.String(), Props: props, End: end, Today: today}
}
