package cache

import (
	"sync"
	"time"

	"hmp/internal/domain"
)

// step says: every report of the property whose last date is on or after
// from was made stale by a change committed at at (the latest such).
type step struct {
	from domain.Date
	at   time.Time
}

// maxSteps bounds a property's staircase; past it the two earliest steps
// merge into one, which can only make more entries stale, never fewer.
const maxSteps = 32

// watermarks keeps, per property, when the last change touching each date
// span was committed: last(p, end) is the commit time of the latest change
// on a date <= end (a report depends on every date up to its last one,
// through its opening balance). It is a staircase non-decreasing in end.
type watermarks struct {
	mu    sync.RWMutex
	props map[domain.ID][]step
}

func newWatermarks() *watermarks { return &watermarks{props: make(map[domain.ID][]step)} }

// last returns the commit time of the latest change of p on or before end
// (zero: none known).
func (w *watermarks) last(p domain.ID, end domain.Date) time.Time {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var at time.Time
	for _, s := range w.props[p] {
		if s.from.After(end) {
			break
		}
		at = s.at
	}
	return at
}

// add records a change of p on dates from onwards committed at at. Changes
// may arrive out of order: the staircase keeps the maximum.
func (w *watermarks) add(p domain.ID, from domain.Date, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.props[p]
	out := make([]step, 0, len(old)+1)
	var prev time.Time // value of the staircase just before from
	inserted := false
	for _, s := range old {
		if s.from.Before(from) {
			out = append(out, s)
			prev = s.at
			continue
		}
		if !inserted {
			out = append(out, step{from, maxTime(prev, at)})
			inserted = true
		}
		if s.from == from {
			out[len(out)-1].at = maxTime(out[len(out)-1].at, s.at)
			continue
		}
		out = append(out, step{s.from, maxTime(s.at, at)})
	}
	if !inserted {
		out = append(out, step{from, maxTime(prev, at)})
	}
	// Drop steps that do not raise the staircase.
	kept := out[:0]
	for _, s := range out {
		if len(kept) > 0 && !s.at.After(kept[len(kept)-1].at) {
			continue
		}
		kept = append(kept, s)
	}
	for len(kept) > maxSteps {
		kept[1].from = kept[0].from
		kept = kept[1:]
	}
	w.props[p] = kept
}

// prune forgets the steps older than before: no live entry can predate
// them, so they no longer make anything stale.
func (w *watermarks) prune(before time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, steps := range w.props {
		i := 0
		for i < len(steps) && steps[i].at.Before(before) {
			i++
		}
		switch {
		case i == len(steps):
			delete(w.props, p)
		case i > 0:
			w.props[p] = append([]step(nil), steps[i:]...)
		}
	}
}

// size returns how many properties have watermarks.
func (w *watermarks) size() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.props)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
