// Package clocktest is a settable clock for tests: services take a clock
// (a func() time.Time), and a test hands them Clock.Now to decide what
// "now" is.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a clock that stands still until a test moves it, or (from
// Wall) follows the wall clock until a test sets it; safe for concurrent
// use. The zero value reads the zero time.
type Clock struct {
	mu     sync.Mutex
	t      time.Time
	wall   bool          // read time.Now plus offset until Set
	offset time.Duration // what Advance added while wall
}

// New returns a clock that reads t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Wall returns a clock that reads the wall clock (moved by Advance) until
// Set freezes it: for fixtures whose tests mostly do not care.
func Wall() *Clock { return &Clock{wall: true} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wall {
		return time.Now().Add(c.offset)
	}
	return c.t
}

// Set moves the clock to t (earlier or later); from then on it stands
// still.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t, c.wall = t, false
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wall {
		c.offset += d
		return
	}
	c.t = c.t.Add(d)
}
