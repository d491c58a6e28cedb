package cache_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"hmp/internal/cache"
	"hmp/internal/domain"
	"hmp/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// report is what the suite caches.
type report struct {
	Date  domain.Date `json:"date"`
	Cents int64       `json:"cents"`
}

// tier is one implementation under the conformance suite: writer fills,
// reader reads (the same cache for the in-process tier; for Redis a
// second instance whose own memory is empty, so it must answer from
// Redis).
type tier struct {
	writer, reader *cache.Cache
	reg            *prometheus.Registry
	name           string
}

// apply delivers changes to every instance, as the bus does.
func (tr tier) apply(changes ...cache.Change) {
	tr.writer.Apply(changes)
	if tr.reader != tr.writer {
		tr.reader.Apply(changes)
	}
}

func newCache(t *testing.T, cfg cache.Config, reg prometheus.Registerer) *cache.Cache {
	t.Helper()
	cfg.ClockSkew = time.Nanosecond // one machine, one clock
	c, err := cache.New(cfg, discard, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func tiers(t *testing.T) []func(t *testing.T) tier {
	return []func(t *testing.T) tier{
		func(t *testing.T) tier {
			reg := prometheus.NewRegistry()
			c := newCache(t, cache.Config{}, reg)
			return tier{writer: c, reader: c, reg: reg, name: "memory"}
		},
		func(t *testing.T) tier {
			r := redistest.Start(t)
			reg := prometheus.NewRegistry()
			w := newCache(t, cache.Config{RedisURL: r.URL}, nil)
			rd := newCache(t, cache.Config{RedisURL: r.URL}, reg)
			return tier{writer: w, reader: rd, reg: reg, name: "redis"}
		},
	}
}

var (
	org   = domain.NewID(time.Now())
	propP = domain.NewID(time.Now())
	propQ = domain.NewID(time.Now())
	today = domain.MustDate("2026-06-15")
)

func key(id string, end domain.Date, props ...domain.ID) cache.Key {
	return cache.Key{ID: id, Props: props, End: end, Today: today}
}

// loader counts its calls and answers cents.
type loader struct {
	calls atomic.Int64
	cents int64
	err   error
}

func (l *loader) load(d domain.Date) func(context.Context) (report, error) {
	return func(context.Context) (report, error) {
		l.calls.Add(1)
		return report{Date: d, Cents: l.cents}, l.err
	}
}

func fetch(t *testing.T, c *cache.Cache, k cache.Key, l *loader) report {
	t.Helper()
	v, err := cache.Fetch(context.Background(), c, k, false, l.load(k.End))
	if err != nil {
		t.Fatalf("fetch %s: %v", k.ID, err)
	}
	return v
}

// TestTierConformance runs one contract against every tier.
func TestTierConformance(t *testing.T) {
	for _, mk := range tiers(t) {
		probe := mk(t)
		t.Run(probe.name, func(t *testing.T) {
			t.Run("a cold cache exports hits and misses of every tier and class at zero", func(t *testing.T) {
				tr := mk(t)
				var want []string
				for _, tierName := range slices.Compact([]string{"memory", tr.name}) {
					for _, class := range []string{"active", "historical"} {
						want = append(want, tierName+"/"+class)
					}
				}
				for _, name := range []string{"hmp_cache_hits_total", "hmp_cache_misses_total"} {
					got := map[string]float64{}
					for _, s := range series(t, tr.reg, name) {
						got[s.labels["tier"]+"/"+s.labels["class"]] = s.value
					}
					for _, w := range want {
						if v, ok := got[w]; !ok || v != 0 {
							t.Errorf("%s{tier/class=%s} = %v (exported: %v), want 0 before the first read (the hit-rate alert reads it)", name, w, v, ok)
						}
					}
				}
			})
			t.Run("a load is served again without loading", func(t *testing.T) {
				tr := mk(t)
				l := &loader{cents: 7}
				k := key("a", today, propP)
				fetch(t, tr.writer, k, l)
				if got := fetch(t, tr.reader, k, l); got.Cents != 7 || l.calls.Load() != 1 {
					t.Fatalf("got %+v after %d loads, want 7 after 1", got, l.calls.Load())
				}
				if hits := hits(t, tr); hits != 1 {
					t.Fatalf("%s hits = %v, want 1", tr.name, hits)
				}
			})
			t.Run("an encoded read encodes once per entry, and again once a change made it stale", func(t *testing.T) {
				tr := mk(t)
				l := &loader{cents: 7}
				var encodes atomic.Int64
				encode := func(r report) ([]byte, error) {
					encodes.Add(1)
					return []byte(strconv.FormatInt(r.Cents, 10)), nil
				}
				k := key("enc", today, propP)
				read := func(c *cache.Cache) string {
					t.Helper()
					b, err := cache.FetchEncoded(context.Background(), c, k, false, l.load(k.End), encode)
					if err != nil {
						t.Fatal(err)
					}
					return string(b)
				}
				read(tr.writer)
				first := encodes.Load()
				for range 3 {
					if got := read(tr.reader); got != "7" {
						t.Fatalf("read %q, want 7", got)
					}
				}
				if n := encodes.Load(); n-first > 1 {
					t.Fatalf("%d encodings for one entry read 3 times, want at most 1 (a hit writes the kept bytes)", n-first)
				}
				l.cents = 9
				tr.apply(cache.Change{OrgID: org, PropertyID: propP, From: today, At: time.Now()})
				if got := read(tr.reader); got != "9" {
					t.Fatalf("after a change: read %q, want 9 (the stale rendering must go with its entry)", got)
				}
			})
			t.Run("Encoded answers only a rendered, valid entry, counting the hit", func(t *testing.T) {
				tr := mk(t)
				l := &loader{cents: 7}
				encode := func(r report) ([]byte, error) { return []byte(strconv.FormatInt(r.Cents, 10)), nil }
				k := key("encoded", today, propP)
				if _, ok := tr.reader.Encoded(k); ok {
					t.Fatal("Encoded answered a key never read")
				}
				fetch(t, tr.reader, k, l) // held, but not rendered
				if _, ok := tr.reader.Encoded(k); ok {
					t.Fatal("Encoded answered an entry FetchEncoded never rendered")
				}
				memHits := func() (n float64) {
					for _, s := range series(t, tr.reg, "hmp_cache_hits_total") {
						if s.labels["tier"] == "memory" {
							n += s.value
						}
					}
					return n
				}
				before := memHits()
				if _, err := cache.FetchEncoded(context.Background(), tr.reader, k, false, l.load(k.End), encode); err != nil {
					t.Fatal(err)
				}
				b, ok := tr.reader.Encoded(k)
				if !ok || string(b) != "7" {
					t.Fatalf("Encoded = %q, %v; want 7, true", b, ok)
				}
				if got := memHits() - before; got != 2 {
					t.Fatalf("memory hits grew by %v over a FetchEncoded hit and an Encoded hit, want 2", got)
				}
				tr.apply(cache.Change{OrgID: org, PropertyID: propP, From: today, At: time.Now()})
				if b, ok := tr.reader.Encoded(k); ok {
					t.Fatalf("Encoded answered %q after a change made the entry stale", b)
				}
				var off *cache.Cache
				if _, ok := off.Encoded(k); ok {
					t.Fatal("an off cache answered")
				}
			})
			t.Run("a change makes stale exactly the reports reaching its date", func(t *testing.T) {
				tr := mk(t)
				d := today.AddDays(-10)
				keys := map[string]cache.Key{
					"before":      key("before", d.AddDays(-1), propP),
					"on":          key("on", d, propP),
					"after":       key("after", d.AddDays(5), propP),
					"range-over":  key("range-over", d.AddDays(2), propP),
					"range-below": key("range-below", d.AddDays(-2), propP),
					"other":       key("other", d.AddDays(5), propQ),
					"set":         key("set", d.AddDays(5), propQ, propP),
				}
				old := &loader{cents: 1}
				for _, k := range keys {
					fetch(t, tr.writer, k, old)
				}
				tr.apply(cache.Change{OrgID: org, PropertyID: propP, From: d, At: time.Now()})
				stale := map[string]bool{"on": true, "after": true, "range-over": true, "set": true}
				for name, k := range keys {
					l := &loader{cents: 2}
					got := fetch(t, tr.reader, k, l)
					want := int64(1)
					if stale[name] {
						want = 2
					}
					if got.Cents != want {
						t.Errorf("%s: got %d, want %d", name, got.Cents, want)
					}
				}
				// Reloaded entries are good again.
				for name, k := range keys {
					if got := fetch(t, tr.reader, k, &loader{cents: 3}); got.Cents == 3 {
						t.Errorf("%s reloaded twice", name)
					}
				}
			})
			t.Run("an older change arriving late changes nothing newer", func(t *testing.T) {
				tr := mk(t)
				k := key("late", today, propP)
				before := time.Now()
				fetch(t, tr.writer, k, &loader{cents: 1})
				tr.apply(cache.Change{OrgID: org, PropertyID: propP, From: today.AddDays(-30), At: before.Add(-time.Second)})
				if got := fetch(t, tr.reader, k, &loader{cents: 2}); got.Cents != 1 {
					t.Fatalf("an entry computed after the change was dropped: %+v", got)
				}
			})
			t.Run("a failed load is not kept", func(t *testing.T) {
				tr := mk(t)
				k := key("err", today, propP)
				boom := errors.New("boom")
				if _, err := cache.Fetch(context.Background(), tr.reader, k, false, (&loader{err: boom}).load(today)); !errors.Is(err, boom) {
					t.Fatalf("err = %v", err)
				}
				if got := fetch(t, tr.reader, k, &loader{cents: 5}); got.Cents != 5 {
					t.Fatalf("got %+v", got)
				}
			})
			t.Run("a burst on one key loads once", func(t *testing.T) {
				tr := mk(t)
				k := key("burst", today, propP)
				const n = 64
				var arrived sync.WaitGroup
				arrived.Add(n)
				release := make(chan struct{})
				var calls atomic.Int64
				load := func(context.Context) (report, error) {
					calls.Add(1)
					<-release
					return report{Cents: 9}, nil
				}
				var wg sync.WaitGroup
				errs := make(chan error, n)
				for range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						arrived.Done()
						v, err := cache.Fetch(context.Background(), tr.reader, k, false, load)
						if err == nil && v.Cents != 9 {
							err = errors.New("wrong value")
						}
						errs <- err
					}()
				}
				arrived.Wait()
				close(release)
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				if c := calls.Load(); c != 1 {
					t.Fatalf("%d loads for one key", c)
				}
			})
			t.Run("a fresh read skips the tiers and refreshes them", func(t *testing.T) {
				tr := mk(t)
				k := key("fresh", today, propP)
				fetch(t, tr.writer, k, &loader{cents: 1})
				v, err := cache.Fetch(context.Background(), tr.writer, k, true, (&loader{cents: 2}).load(today))
				if err != nil || v.Cents != 2 {
					t.Fatalf("fresh: %+v %v", v, err)
				}
				if got := fetch(t, tr.reader, k, &loader{cents: 3}); got.Cents != 2 {
					t.Fatalf("after a fresh read: %+v, want 2", got)
				}
			})
		})
	}
}

// hits returns hmp_cache_hits_total of the tier, every TTL class.
// labelled is one series: its labels and value.
type labelled struct {
	labels map[string]string
	value  float64
}

// series returns name's series in reg.
func series(t *testing.T, reg prometheus.Gatherer, name string) []labelled {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []labelled
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, labelled{labels, m.GetCounter().GetValue()})
		}
	}
	return out
}

func hits(t *testing.T, tr tier) float64 {
	t.Helper()
	mfs, err := tr.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hmp_cache_hits_total" {
			continue
		}
		var n float64
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tier" && l.GetValue() == tr.name {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	return 0
}

// An instance never trusts a shared entry computed before it started: it
// may have missed the change that made it stale.
func TestRedisEntriesBeforeStartAreNotTrusted(t *testing.T) {
	r := redistest.Start(t)
	w := newCache(t, cache.Config{RedisURL: r.URL}, nil)
	k := key("old", today, propP)
	fetch(t, w, k, &loader{cents: 1})
	late := newCache(t, cache.Config{RedisURL: r.URL}, nil)
	if got := fetch(t, late, k, &loader{cents: 2}); got.Cents != 2 {
		t.Fatalf("served an entry from before its start: %+v", got)
	}
}

// Redis down or gone: reads are answered from the other tiers, never an
// error, and the breaker keeps Redis out after a few failures.
func TestRedisDownNeverFailsAReader(t *testing.T) {
	r := redistest.Start(t)
	c := newCache(t, cache.Config{RedisURL: r.URL, Entries: 1, RedisTimeout: 20 * time.Millisecond}, nil)
	fetch(t, c, key("up", today, propP), &loader{cents: 1})
	r.Kill()
	for i := range 20 {
		k := key("down"+string(rune('a'+i)), today, propP)
		if got := fetch(t, c, k, &loader{cents: int64(i)}); got.Cents != int64(i) {
			t.Fatalf("read %d: %+v", i, got)
		}
	}
	if !cache.BreakerOpen(c) {
		t.Fatal("the breaker did not open")
	}
}

func TestTTLClass(t *testing.T) {
	c := newCache(t, cache.Config{}, nil)
	for _, tc := range []struct {
		end  domain.Date
		want time.Duration
	}{
		{today, 15 * time.Second},
		{today.AddDays(30), 15 * time.Second},
		{today.AddDays(-3), 15 * time.Second},
		{today.AddDays(-4), 2 * time.Minute},
	} {
		if got := cache.TTL(c, key("k", tc.end, propP)); got != tc.want {
			t.Errorf("end %s: ttl %s, want %s", tc.end, got, tc.want)
		}
	}
}

func TestOff(t *testing.T) {
	c, err := cache.New(cache.Config{Entries: -1}, discard, nil)
	if err != nil || c != nil {
		t.Fatalf("off: %v %v", c, err)
	}
	l := &loader{cents: 1}
	fetch(t, c, key("k", today, propP), l)
	fetch(t, c, key("k", today, propP), l)
	if l.calls.Load() != 2 {
		t.Fatalf("%d loads with the cache off", l.calls.Load())
	}
}
