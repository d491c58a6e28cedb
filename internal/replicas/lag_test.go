package replicas

import (
	"math"
	"testing"
	"time"
)

// How old a replica's data may be, from the primary's samples and the
// replica's last replayed commit; an idle primary must not make a replica
// that misses only a few bytes of checkpoint records look hours behind.
func TestLagSeconds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	r := &Router{history: []sample{
		{lsn: 1000, at: now.Add(-6 * time.Second)},
		{lsn: 2000, at: now.Add(-4 * time.Second)},
		{lsn: 3000, at: now.Add(-2 * time.Second)},
		{lsn: 3100, at: now},
	}}
	for _, c := range []struct {
		name              string
		replay, primary   uint64
		sinceXact, wantLo float64
	}{
		{"caught up", 3100, 3100, 7200, 0},
		{"idle primary: hours since the last commit, the previous sample replayed", 3050, 3100, 7200, 2},
		{"behind two samples", 2500, 3100, 60, 4},
		{"recent commit replayed beats an old sample", 1500, 3100, 1.5, 1.5},
		{"nothing known", 10, 3100, -1, math.Inf(1)},
	} {
		if got := r.lagSeconds(c.replay, c.primary, now, c.sinceXact); got != c.wantLo {
			t.Errorf("%s: lag %v s, want %v", c.name, got, c.wantLo)
		}
	}
}
