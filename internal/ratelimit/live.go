package ratelimit

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"hmp/internal/knobs"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"
)

// liveLimits are the limits set at run time; unset, the configured ones
// hold.
type liveLimits struct {
	mu  sync.Mutex // serializes SetLimits and Close
	set atomic.Pointer[limitSet]
}

// limitSet is one consistent set of limits and their in-process buckets.
type limitSet struct {
	limits map[string]Limit
	local  map[string]*otter.Cache[string, *rate.Limiter]
}

func (l *Limiter) limitOf(name string) Limit {
	if s := l.live.set.Load(); s != nil {
		return s.limits[name]
	}
	return l.cfg.Limits[name]
}

func (l *Limiter) bucketsOf(name string) *otter.Cache[string, *rate.Limiter] {
	if s := l.live.set.Load(); s != nil {
		return s.local[name]
	}
	return l.local[name]
}

// SetLimits changes the named limits (names not given keep theirs; a zero
// or negative Count is unlimited), live, for the next decision on. A
// limit left as it was keeps its buckets, so its spent budgets stay spent;
// a changed one starts afresh (full buckets). Redis budgets are keyed by
// name and follow the new rate at once.
func (l *Limiter) SetLimits(changes map[string]Limit) error {
	l.live.mu.Lock()
	defer l.live.mu.Unlock()
	cur := l.live.set.Load()
	if cur == nil {
		cur = &limitSet{limits: l.cfg.Limits, local: l.local}
	}
	next := &limitSet{limits: maps.Clone(cur.limits), local: map[string]*otter.Cache[string, *rate.Limiter]{}}
	if next.limits == nil {
		next.limits = map[string]Limit{}
	}
	maps.Copy(next.limits, changes)
	var drop []*otter.Cache[string, *rate.Limiter]
	for name, lim := range next.limits {
		if lim.Unlimited() {
			continue
		}
		if old, ok := cur.local[name]; ok && cur.limits[name] == lim {
			next.local[name] = old
			continue
		}
		c, err := otter.New(&otter.Options[string, *rate.Limiter]{
			MaximumSize:      l.cfg.MaxKeys,
			ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](lim.Period),
		})
		if err != nil {
			for n, made := range next.local {
				if cur.local[n] != made {
					made.StopAllGoroutines()
				}
			}
			return fmt.Errorf("rate limit %s: %w", name, err)
		}
		l.rejections.WithLabelValues(name)
		next.local[name] = c
	}
	for name, c := range cur.local {
		if next.local[name] != c {
			drop = append(drop, c)
		}
	}
	l.live.set.Store(next)
	// A decision already holding a dropped cache finishes on it: stopping
	// its maintenance goroutines leaves it usable.
	for _, c := range drop {
		c.StopAllGoroutines()
	}
	return nil
}

// closeLive stops the buckets of the limits set at run time.
func (l *Limiter) closeLive() {
	l.live.mu.Lock()
	defer l.live.mu.Unlock()
	if s := l.live.set.Load(); s != nil {
		for _, c := range s.local {
			c.StopAllGoroutines()
		}
	}
}

// Live returns l as the live settings count it (whole seconds; unlimited:
// the zero Limit).
func (l Limit) Live() knobs.Limit {
	if l.Unlimited() {
		return knobs.Limit{}
	}
	return knobs.Limit{Count: l.Count, PeriodSeconds: max(1, int(l.Period/time.Second))}
}

// Tune puts the live settings' write budgets in force. Only the limits
// that change are set: the settings count whole seconds, and a configured
// sub-second period must not be rounded away.
func (l *Limiter) Tune(k knobs.RateLimits) error {
	changes := map[string]Limit{}
	for name, lim := range map[string]knobs.Limit{WritesUser: k.WritesPerUser, WritesOrg: k.WritesPerOrg} {
		if l.Limit(name).Live() != lim {
			changes[name] = Limit{Count: lim.Count, Period: lim.Period()}
		}
	}
	if len(changes) == 0 {
		return nil
	}
	return l.SetLimits(changes)
}
