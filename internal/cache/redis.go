package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// redisTier is the shared tier: report entries under "hmp:report:<key>",
// each with its own TTL. Every call is bounded by a short timeout and goes
// through a breaker, so a down or slow Redis costs the reads at most a few
// timeouts, then nothing until the breaker's trial call: the caller falls
// through to PostgreSQL and never sees an error.
type redisTier struct {
	client  *redis.Client
	breaker *gobreaker.CircuitBreaker[[]byte]
	timeout time.Duration
}

const redisPrefix = "hmp:report:"

func newRedisTier(cfg Config) (*redisTier, error) {
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	// Short everything: the shared tier is an optimization, never a wait.
	opts.DialTimeout = 4 * cfg.RedisTimeout
	opts.ReadTimeout = cfg.RedisTimeout
	opts.WriteTimeout = cfg.RedisTimeout
	opts.PoolTimeout = cfg.RedisTimeout
	opts.MaxRetries = -1
	opts.ContextTimeoutEnabled = true
	failures := uint32(cfg.BreakerFailures)
	return &redisTier{
		client:  redis.NewClient(opts),
		timeout: cfg.RedisTimeout,
		breaker: gobreaker.NewCircuitBreaker[[]byte](gobreaker.Settings{
			Name:        "redis",
			Timeout:     cfg.BreakerOpen,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
			// A missing key is an answer, not a failure.
			IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, redis.Nil) },
		}),
	}, nil
}

// get returns the stored bytes of key; ok false on a miss, an error, a
// timeout or an open breaker alike.
func (r *redisTier) get(ctx context.Context, key string) ([]byte, bool) {
	b, err := r.breaker.Execute(func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		return r.client.Get(ctx, redisPrefix+key).Bytes()
	})
	return b, err == nil
}

// set stores b under key for ttl; failures are counted by the breaker and
// otherwise ignored.
func (r *redisTier) set(ctx context.Context, key string, b []byte, ttl time.Duration) {
	_, _ = r.breaker.Execute(func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		return nil, r.client.Set(ctx, redisPrefix+key, b, ttl).Err()
	})
}

// size returns the number of keys in Redis's database (-1 when unknown).
func (r *redisTier) size(ctx context.Context) int64 {
	if r.breaker.State() == gobreaker.StateOpen {
		return -1
	}
	ctx, cancel := context.WithTimeout(ctx, 4*r.timeout)
	defer cancel()
	n, err := r.client.DBSize(ctx).Result()
	if err != nil {
		return -1
	}
	return n
}

func (r *redisTier) close() { _ = r.client.Close() }
