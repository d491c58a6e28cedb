package tenancy

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// DefaultScopeMaxStale is how long Property trusts what it last read of a
// MANAGER's assignments: the bound a session's role and revocation are
// already trusted for (auth.DefaultMaxStale), so that an unassigned
// MANAGER loses a property on every instance within the same 2 s as a
// disabled one loses their token (at once on the instance that made the
// change).
const DefaultScopeMaxStale = 2 * time.Second

// scopeKey names one MANAGER's assignments.
type scopeKey struct{ org, user domain.ID }

// assigned is a MANAGER's assignment set as read at a wall-clock time.
type assigned struct {
	ids map[domain.ID]struct{}
	at  time.Time
}

// scopes caches MANAGER assignments, the one access question a report
// read still asked PostgreSQL (a property and its zone are cached for
// good: properties never change). Freshness is wall-clock (staleness is
// about real propagation, not the service clock tests move) and checked
// on read, so the cache needs no goroutine.
type scopes struct {
	maxStale time.Duration
	cache    *otter.Cache[scopeKey, assigned]
	// epoch counts forgets: a read that raced one (it may have read the
	// assignments before the change committed) is served but not kept, so
	// a change is seen at once on this instance.
	epoch atomic.Uint64
}

// newScopes returns the assignment cache; nil when maxStale < 0 (off).
func newScopes(maxStale time.Duration, size int) (*scopes, error) {
	if maxStale < 0 {
		return nil, nil
	}
	if maxStale == 0 {
		maxStale = DefaultScopeMaxStale
	}
	c, err := otter.New(&otter.Options[scopeKey, assigned]{MaximumSize: size})
	if err != nil {
		return nil, fmt.Errorf("scope cache: %w", err)
	}
	return &scopes{maxStale: maxStale, cache: c}, nil
}

// isAssigned reports whether a MANAGER is assigned to a property: from
// the cache when its answer is younger than maxStale, else from
// PostgreSQL (all the user's assignments at once, kept for the next
// read).
func (s *Service) isAssigned(ctx context.Context, org, user, property domain.ID) (bool, error) {
	if s.scopes == nil {
		var ok bool
		err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM manager_properties WHERE org_id = $1 AND user_id = $2 AND property_id = $3)`,
			org, user, property).Scan(&ok)
		if err != nil {
			return false, fmt.Errorf("check assignment: %w", postgres.Translate(err))
		}
		return ok, nil
	}
	k := scopeKey{org, user}
	if e, ok := s.scopes.cache.GetIfPresent(k); ok && time.Since(e.at) < s.scopes.maxStale {
		_, ok := e.ids[property]
		return ok, nil
	}
	epoch, at := s.scopes.epoch.Load(), time.Now() // staleness counts from before the read
	rows, err := s.pool.Query(ctx, `SELECT property_id FROM manager_properties WHERE org_id = $1 AND user_id = $2`, org, user)
	if err != nil {
		return false, fmt.Errorf("load assignments: %w", postgres.Translate(err))
	}
	defer rows.Close()
	ids := map[domain.ID]struct{}{}
	for rows.Next() {
		var id domain.ID
		if err := rows.Scan(&id); err != nil {
			return false, fmt.Errorf("load assignments: %w", err)
		}
		ids[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("load assignments: %w", postgres.Translate(err))
	}
	if s.scopes.epoch.Load() == epoch {
		s.scopes.cache.Set(k, assigned{ids: ids, at: at})
	}
	_, ok := ids[property]
	return ok, nil
}

// forgetScope drops what this instance knows of a user's assignments;
// call it after a change to them has committed.
func (s *Service) forgetScope(org, user domain.ID) {
	if s.scopes == nil {
		return
	}
	s.scopes.epoch.Add(1)
	s.scopes.cache.Invalidate(scopeKey{org, user})
}
