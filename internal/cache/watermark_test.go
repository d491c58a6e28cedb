package cache

import (
	"testing"
	"time"

	"hmp/internal/domain"
)

func TestWatermarks(t *testing.T) {
	p, q := domain.NewID(time.Now()), domain.NewID(time.Now())
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	d := domain.MustDate
	w := newWatermarks()
	w.add(p, d("2026-01-10"), at(1))
	w.add(p, d("2026-01-05"), at(2))
	w.add(p, d("2026-01-20"), at(3))
	w.add(p, d("2026-01-07"), at(0)) // late and old: raises nothing
	for _, c := range []struct {
		end  string
		want time.Time
	}{
		{"2026-01-04", time.Time{}},
		{"2026-01-05", at(2)},
		{"2026-01-09", at(2)},
		{"2026-01-10", at(2)},
		{"2026-01-19", at(2)},
		{"2026-01-20", at(3)},
		{"2027-01-01", at(3)},
	} {
		if got := w.last(p, d(c.end)); !got.Equal(c.want) {
			t.Errorf("last(%s) = %v, want %v", c.end, got, c.want)
		}
	}
	if got := w.last(q, d("2027-01-01")); !got.IsZero() {
		t.Errorf("another property: %v", got)
	}
	t.Run("bounded and conservative", func(t *testing.T) {
		w := newWatermarks()
		for i := range 100 {
			w.add(p, d("2026-01-01").AddDays(i), at(i))
		}
		if n := len(w.props[p]); n > maxSteps {
			t.Fatalf("%d steps", n)
		}
		for i := range 100 {
			if got := w.last(p, d("2026-01-01").AddDays(i)); got.Before(at(i)) {
				t.Fatalf("day %d: %v before its change %v", i, got, at(i))
			}
		}
	})
	t.Run("prune", func(t *testing.T) {
		w.prune(at(2).Add(time.Millisecond))
		if got := w.last(p, d("2026-01-09")); !got.IsZero() {
			t.Errorf("pruned step still answers %v", got)
		}
		if got := w.last(p, d("2026-01-20")); !got.Equal(at(3)) {
			t.Errorf("kept step: %v", got)
		}
		w.prune(at(4))
		if w.size() != 0 {
			t.Errorf("%d properties left", w.size())
		}
	})
}
