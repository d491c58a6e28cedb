// Package ratelimit answers "may this key act once more now?" for the
// named limits of the HTTP edge (logins per email and per address, signups
// per address, writes per user and per organization). Budgets live in
// process (golang.org/x/time/rate token buckets) or, when a Redis client
// is given, in Redis (go-redis/redis_rate's GCRA) so that every instance
// shares them. Redis down or slow never fails a request: a circuit breaker
// (5 consecutive failures open it for 60 s) sends decisions to the
// in-process buckets meanwhile.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// Limit allows Count actions per Period for one key, in a burst of up to
// Count. The zero value (or a negative Count) means unlimited.
type Limit struct {
	Count  int
	Period time.Duration
}

// Unlimited reports whether l lets everything through.
func (l Limit) Unlimited() bool { return l.Count <= 0 || l.Period <= 0 }

func (l Limit) String() string {
	if l.Unlimited() {
		return "unlimited"
	}
	return fmt.Sprintf("%d per %s", l.Count, l.Period)
}

// The names of the limits the edge applies.
const (
	LoginEmail = "login_email"
	LoginAddr  = "login_addr"
	SignupAddr = "signup_addr"
	WritesUser = "writes_user"
	WritesOrg  = "writes_org"
	// OperatorAddr bounds the failed operator authentications (a wrong
	// HMP_ADMIN_TOKEN) of one client address: see Spent.
	OperatorAddr = "operator_addr"
	redisPrefix  = "hmp:rl:"
)

// Config holds the limits by name and the Redis tuning. The zero value of
// a limit is unlimited: defaults are the caller's (config.Config) business.
type Config struct {
	// Limits maps a limit name (LoginEmail, ...) to its Limit; a missing
	// name is unlimited.
	Limits map[string]Limit
	// RedisTimeout bounds one Redis decision before the in-process bucket
	// decides instead. Default 50 ms.
	RedisTimeout time.Duration
	// BreakerFailures consecutive Redis failures open the breaker. Default 5.
	BreakerFailures uint32
	// BreakerOpen is how long an open breaker keeps Redis out before a
	// half-open probe. Default 60 s.
	BreakerOpen time.Duration
	// MaxKeys bounds the in-process buckets kept per limit; an idle bucket
	// is dropped once it would be full again anyway. Default 100,000.
	MaxKeys int
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.RedisTimeout <= 0 {
		c.RedisTimeout = 50 * time.Millisecond
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerOpen <= 0 {
		c.BreakerOpen = 60 * time.Second
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 100_000
	}
	return c
}

// Limiter decides. Safe for concurrent use.
type Limiter struct {
	cfg    Config
	logger *slog.Logger
	local  map[string]*otter.Cache[string, *rate.Limiter]
	redis  *redis_rate.Limiter
	cb     *gobreaker.CircuitBreaker[*redis_rate.Result]

	rejections *prometheus.CounterVec
	fallbacks  prometheus.Counter
	state      prometheus.Gauge

	// live holds the limits set at run time (live.go).
	live liveLimits
}

// New returns a Limiter of cfg's limits. client is the shared Redis (nil:
// in-process only). Metrics register on reg (nil: not exported):
// hmp_ratelimit_rejections_total{limit}, hmp_ratelimit_redis_fallbacks_total
// and hmp_ratelimit_redis_breaker_state (0 closed, 1 half-open, 2 open).
func New(cfg Config, client redis.UniversalClient, logger *slog.Logger, reg prometheus.Registerer) (*Limiter, error) {
	cfg = cfg.WithDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{
		cfg: cfg, logger: logger, local: map[string]*otter.Cache[string, *rate.Limiter]{},
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hmp_ratelimit_rejections_total", Help: "Requests refused with 429 by rate limit.",
		}, []string{"limit"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hmp_ratelimit_redis_fallbacks_total", Help: "Rate limit decisions taken in process because Redis failed, was slow or its breaker was open.",
		}),
		state: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hmp_ratelimit_redis_breaker_state", Help: "State of the breaker around the Redis rate limiter: 0 closed, 1 half-open, 2 open.",
		}),
	}
	for name, lim := range cfg.Limits {
		if lim.Unlimited() {
			continue
		}
		l.rejections.WithLabelValues(name)
		c, err := otter.New(&otter.Options[string, *rate.Limiter]{
			MaximumSize: cfg.MaxKeys,
			// A bucket untouched for a whole period is full again:
			// dropping it changes no decision.
			ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](lim.Period),
		})
		if err != nil {
			return nil, fmt.Errorf("rate limit %s: %w", name, err)
		}
		l.local[name] = c
	}
	if client != nil {
		l.redis = redis_rate.NewLimiter(client)
		l.cb = gobreaker.NewCircuitBreaker[*redis_rate.Result](gobreaker.Settings{
			Name:    "redis_ratelimit",
			Timeout: cfg.BreakerOpen,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= cfg.BreakerFailures
			},
			OnStateChange: func(_ string, from, to gobreaker.State) {
				l.state.Set(float64(to))
				logger.Warn("ratelimit_redis_breaker", "from", from.String(), "to", to.String())
			},
		})
	}
	if reg != nil {
		reg.MustRegister(l.rejections, l.fallbacks, l.state)
	}
	return l, nil
}

// Close stops the in-process buckets' background work. Safe twice.
func (l *Limiter) Close() {
	for _, c := range l.local {
		c.StopAllGoroutines()
	}
	l.closeLive()
}

// Limit returns the configured limit of name.
func (l *Limiter) Limit(name string) Limit { return l.limitOf(name) }

// Allow takes one action from key's budget under the named limit. When the
// budget is spent it returns false and how long until the next action is
// allowed (at least one second, as Retry-After counts whole seconds), and
// counts the rejection. An unknown or unlimited name always allows. Never
// fails: a Redis error decides in process.
func (l *Limiter) Allow(ctx context.Context, name, key string) (bool, time.Duration) {
	lim := l.limitOf(name)
	if lim.Unlimited() {
		return true, 0
	}
	ok, wait := l.decide(ctx, name, key, lim)
	if !ok {
		l.rejections.WithLabelValues(name).Inc()
		wait = max(wait, time.Second)
	}
	return ok, wait
}

func (l *Limiter) decide(ctx context.Context, name, key string, lim Limit) (bool, time.Duration) {
	if l.redis != nil {
		res, err := l.cb.Execute(func() (*redis_rate.Result, error) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.RedisTimeout)
			defer cancel()
			return l.redis.Allow(ctx, redisPrefix+name+":"+key, redis_rate.Limit{Rate: lim.Count, Burst: lim.Count, Period: lim.Period})
		})
		if err == nil {
			return res.Allowed > 0, max(res.RetryAfter, 0)
		}
		l.fallbacks.Inc()
		if !errors.Is(err, gobreaker.ErrOpenState) && !errors.Is(err, gobreaker.ErrTooManyRequests) {
			l.logger.Debug("ratelimit_redis_failed", "limit", name, "error", err.Error())
		}
	}
	return l.decideLocal(name, key, lim)
}

func (l *Limiter) decideLocal(name, key string, lim Limit) (bool, time.Duration) {
	c := l.bucketsOf(name)
	b, _ := c.Compute(key, func(old *rate.Limiter, found bool) (*rate.Limiter, otter.ComputeOp) {
		if found {
			return old, otter.CancelOp
		}
		every := rate.Every(lim.Period / time.Duration(lim.Count))
		if lim.Period/time.Duration(lim.Count) <= 0 {
			every = rate.Limit(math.Inf(1))
		}
		return rate.NewLimiter(every, lim.Count), otter.WriteOp
	})
	now := time.Now()
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return false, lim.Period
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Spent reports whether key's budget under the named limit is spent,
// without taking from it, and if so how long until one action is allowed
// again (at least one second). Together with Allow it limits failures
// rather than attempts: check Spent first, act, and take from the budget
// with Allow only when the action failed. Attempts checked at the same
// moment may all pass Spent: the excess is bounded by their concurrency.
// An unknown or unlimited name is never spent; a Redis error decides in
// process.
func (l *Limiter) Spent(ctx context.Context, name, key string) (bool, time.Duration) {
	lim := l.limitOf(name)
	if lim.Unlimited() {
		return false, 0
	}
	spent, wait := l.peek(ctx, name, key, lim)
	if spent {
		l.rejections.WithLabelValues(name).Inc()
		wait = max(wait, time.Second)
	}
	return spent, wait
}

func (l *Limiter) peek(ctx context.Context, name, key string, lim Limit) (bool, time.Duration) {
	if l.redis != nil {
		res, err := l.cb.Execute(func() (*redis_rate.Result, error) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.RedisTimeout)
			defer cancel()
			// A cost of 0 reads the budget and leaves it as it is.
			return l.redis.AllowN(ctx, redisPrefix+name+":"+key, redis_rate.Limit{Rate: lim.Count, Burst: lim.Count, Period: lim.Period}, 0)
		})
		if err == nil {
			if res.Remaining >= 1 {
				return false, 0
			}
			every := lim.Period / time.Duration(lim.Count)
			return true, max(res.ResetAfter-time.Duration(lim.Count-1)*every, 0)
		}
		l.fallbacks.Inc()
	}
	b, ok := l.bucketsOf(name).GetIfPresent(key)
	if !ok {
		return false, 0 // never used: full
	}
	now := time.Now()
	tokens := b.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	every := lim.Period / time.Duration(lim.Count)
	return true, time.Duration((1 - tokens) * float64(every))
}

// RetryAfterSeconds renders a wait as a Retry-After value: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
