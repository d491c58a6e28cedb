package reports

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"

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
// whether pending rows count. end is the last date the report covers. It
// is built in one buffer: a cached read makes one key and little else.
func cacheKey(kind string, org domain.ID, props []domain.ID, start, end, today domain.Date, includePending bool) cache.Key {
	var buf [160]byte
	b := append(buf[:0], kind...)
	b = append(b, '|')
	b = org.Append(b)
	b = append(b, '|')
	switch len(props) {
	case 1:
		b = props[0].Append(b)
	default:
		// The caller's property set, order-free and bounded in length.
		sorted := slices.Clone(props)
		slices.SortFunc(sorted, func(x, y domain.ID) int { return slices.Compare(x[:], y[:]) })
		h := sha256.New()
		for _, p := range sorted {
			h.Write(p[:])
		}
		b = append(b, "set:"...)
		b = strconv.AppendInt(b, int64(len(props)), 10)
		b = append(b, ':')
		b = hex.AppendEncode(b, h.Sum(nil)[:16])
	}
	b = append(b, '|')
	b = start.Append(b)
	b = append(b, '|')
	b = end.Append(b)
	if includePending {
		b = append(b, "|p"...)
	}
	return cache.Key{ID: string(b), Props: props, End: end, Today: today}
}
