// Package cache keeps report reads in two tiers in front of PostgreSQL:
// an in-process W-TinyLFU cache (otter) with a loader that lets one read
// per key reach the database however many ask at once, and, when
// configured, a Redis tier shared by every instance.
//
// Invalidation is exact and never a global flush. Every entry records when
// its computation started; per property the cache keeps a watermark
// staircase: for each date, the commit time of the latest change on that
// date or before (a report depends on every date up to its last one, its
// opening balance being their sum). An entry is served only if it was
// computed after (plus the clock skew allowance) the latest change its
// properties had on or before its last date. The projector announces each
// committed batch's changes (organization, property, earliest date) and
// every instance applies them to its watermarks, which cover both tiers:
// a Redis entry is judged by the reading instance's watermarks.
//
// Reads that carry a consistency token never read a tier (Fresh): they
// already waited for the projection to hold their write, so they read
// PostgreSQL and store the result for the reads after them. A token read
// is therefore correct on any instance whatever its invalidations.
package cache

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/domain"
)

// Key identifies one report read and what makes it stale.
type Key struct {
	// ID is the read's identity: its kind and every parameter that changes
	// the answer (organization, properties, dates, includePending).
	ID string
	// Props are the properties whose changes make it stale.
	Props []domain.ID
	// End is the last date the report covers; it depends on every date up
	// to End.
	End domain.Date
	// Today is today in the report's time zone (the property's; for
	// several properties the earliest of their todays): it decides the TTL
	// class.
	Today domain.Date
}

// entry is a cached report.
type entry struct {
	at       time.Time // when its computation started (before the query)
	deadline time.Time // when it expires
	val      any
	// encoded is val as FetchEncoded's encode renders it, made on the
	// entry's first encoded read and kept: a hit writes these bytes.
	encoded atomic.Pointer[[]byte]
}

// wire is an entry as stored in Redis.
type wire[T any] struct {
	At  int64 `json:"at"` // unix nanoseconds
	Val T     `json:"val"`
}

// Cache is the report cache. A nil *Cache, or one whose Config has the
// cache off, passes every read to its loader.
type Cache struct {
	cfg    Config
	logger *slog.Logger
	mem    *otter.Cache[string, *entry]
	redis  *redisTier
	marks  *watermarks
	m      metrics
	origin string // this instance, to recognize its own announcements

	// trustFrom: entries computed before it (unix ns) are never served;
	// raised when this instance may have missed announcements.
	trustFrom atomic.Int64
	// live holds the settings switched at run time (live.go).
	live liveSettings

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
	sub  subscription
}

// New returns a cache (nil when cfg turns it off). reg may be nil.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Cache, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, nil
	}
	c := &Cache{cfg: cfg, logger: logger, marks: newWatermarks(), origin: domain.NewID(time.Now()).String()}
	c.m = newMetrics(c)
	var err error
	c.mem, err = otter.New(&otter.Options[string, *entry]{
		MaximumSize: cfg.Entries,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *entry]) time.Duration {
			return max(time.Until(e.Value.deadline), time.Millisecond)
		}),
		OnDeletion: func(e otter.DeletionEvent[string, *entry]) {
			if e.WasEvicted() {
				c.m.evictions.WithLabelValues(tierMemory).Inc()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if cfg.RedisURL != "" {
		if c.redis, err = newRedisTier(cfg); err != nil {
			c.mem.StopAllGoroutines()
			return nil, err
		}
	}
	c.trustFrom.Store(time.Now().UnixNano())
	c.m.exportZeros(c.redis != nil)
	if reg != nil {
		reg.MustRegister(c.m.collectors()...)
	}
	return c, nil
}

// Config returns the settings in force.
func (c *Cache) Config() Config { return c.cfg }

// Close stops the cache's goroutines and its Redis client. Safe to call
// twice; call Stop first if started.
func (c *Cache) Close() {
	if c == nil {
		return
	}
	c.Stop()
	c.mem.StopAllGoroutines()
	if c.redis != nil {
		c.redis.close()
	}
}

// active reports whether k's report touches an active date.
func (c *Cache) active(k Key) bool { return !k.End.Before(k.Today.AddDays(-c.cfg.ActiveDays)) }

// ttl is the time to live of k's report.
func (c *Cache) ttl(k Key) time.Duration {
	if c.active(k) {
		return c.cfg.ActiveTTL
	}
	return c.cfg.HistoricalTTL
}

// class is k's TTL class, the class label of hits and misses.
func (c *Cache) class(k Key) string {
	if c.active(k) {
		return classActive
	}
	return classHistorical
}

// valid reports whether an entry of k computed at at may be served.
func (c *Cache) valid(k Key, at time.Time) bool {
	if at.UnixNano() <= c.trustFrom.Load() {
		return false
	}
	for _, p := range k.Props {
		if last := c.marks.last(p, k.End); !last.IsZero() && !at.After(last.Add(c.cfg.ClockSkew)) {
			return false
		}
	}
	return true
}

// loadTimeout bounds a load shared by the readers of one key.
const loadTimeout = 10 * time.Second

// Fetch returns k's report: from the in-process tier, else from Redis,
// else from load (once per key however many ask at once), storing what it
// loads in both tiers. fresh (a read with a consistency token) skips the
// tiers and stores the loaded report. Cache trouble is never an error: an
// error is load's.
func Fetch[T any](ctx context.Context, c *Cache, k Key, fresh bool, load func(ctx context.Context) (T, error)) (T, error) {
	if c == nil {
		return load(ctx)
	}
	e, err := fetch(ctx, c, k, fresh, load)
	if err != nil {
		var zero T
		return zero, err
	}
	return e.val.(T), nil
}

// FetchEncoded is Fetch answering the report as encode renders it (its
// JSON body, say). The rendering is made once per cached entry and kept
// with it, so a hit encodes nothing: it returns the same bytes, which the
// caller must not modify. Every caller of one key's kind must pass the
// same encoding.
func FetchEncoded[T any](ctx context.Context, c *Cache, k Key, fresh bool, load func(ctx context.Context) (T, error), encode func(T) ([]byte, error)) ([]byte, error) {
	if c == nil {
		v, err := load(ctx)
		if err != nil {
			return nil, err
		}
		return encode(v)
	}
	e, err := fetch(ctx, c, k, fresh, load)
	if err != nil {
		return nil, err
	}
	if b := e.encoded.Load(); b != nil {
		return *b, nil
	}
	// Readers racing on a new entry may each encode it once: the same
	// bytes, the last kept.
	b, err := encode(e.val.(T))
	if err != nil {
		return nil, err
	}
	e.encoded.Store(&b)
	return b, nil
}

// Encoded returns k's rendering when the in-process tier holds a valid
// entry that FetchEncoded has rendered (and counts the hit); else false,
// counting nothing, and the caller goes on to FetchEncoded. It lets a hit
// skip building the load and the encoder, which a miss needs.
func (c *Cache) Encoded(k Key) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.mem.GetIfPresent(k.ID)
	if !ok || !c.valid(k, e.at) {
		return nil, false
	}
	b := e.encoded.Load()
	if b == nil {
		return nil, false
	}
	c.m.memHits.of(c.active(k)).Inc()
	return *b, true
}

// fetch returns k's entry (see Fetch).
func fetch[T any](ctx context.Context, c *Cache, k Key, fresh bool, load func(ctx context.Context) (T, error)) (*entry, error) {
	if fresh {
		c.m.fresh.Inc()
		at := time.Now()
		lctx, h := withAsOf(ctx)
		v, err := load(lctx)
		if err != nil {
			return nil, err
		}
		at = h.adjust(at)
		e := &entry{at: at, deadline: at.Add(c.ttl(k)), val: v}
		c.mem.Set(k.ID, e)
		storeRedis(ctx, c, k, e, v)
		return e, nil
	}
	active := c.active(k)
	if e, ok := c.mem.GetIfPresent(k.ID); ok {
		if c.valid(k, e.at) {
			c.m.memHits.of(active).Inc()
			return e, nil
		}
		c.mem.Invalidate(k.ID)
	}
	c.m.memMisses.of(active).Inc()
	class := c.class(k)
	// The load serves every reader of the key waiting on it: one reader
	// leaving must not fail the others, so it runs detached, bounded.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
	defer cancel()
	return c.mem.Get(lctx, k.ID, otter.LoaderFunc[string, *entry](func(ctx context.Context, _ string) (*entry, error) {
		if c.redis != nil {
			if b, ok := c.redis.get(ctx, k.ID); ok {
				var w wire[T]
				if json.Unmarshal(b, &w) == nil && c.valid(k, time.Unix(0, w.At)) {
					c.m.hits.WithLabelValues(tierRedis, class).Inc()
					at := time.Unix(0, w.At)
					return &entry{at: at, deadline: at.Add(c.ttl(k)), val: w.Val}, nil
				}
			}
			c.m.misses.WithLabelValues(tierRedis, class).Inc()
		}
		at := time.Now()
		lctx, h := withAsOf(ctx)
		v, err := load(lctx)
		if err != nil {
			return nil, err
		}
		at = h.adjust(at)
		e := &entry{at: at, deadline: at.Add(c.ttl(k)), val: v}
		storeRedis(ctx, c, k, e, v)
		return e, nil
	}))
}

func storeRedis[T any](ctx context.Context, c *Cache, k Key, e *entry, v T) {
	if c.redis == nil {
		return
	}
	ttl := time.Until(e.deadline)
	if ttl <= 0 {
		return
	}
	b, err := json.Marshal(wire[T]{At: e.at.UnixNano(), Val: v})
	if err != nil {
		return
	}
	c.redis.set(ctx, k.ID, b, ttl)
}
