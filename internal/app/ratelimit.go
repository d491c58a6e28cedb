package app

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"hmp/internal/ratelimit"
)

// rateLimiter builds the limiter of the configured budgets, shared
// through Redis when RedisURL is set. Its Redis client fails fast (a slow Redis
// costs a request at most the limiter's 50 ms before the in-process
// bucket decides).
func rateLimiter(b base) (*ratelimit.Limiter, error) {
	return limiterOf(b, b.cfg.RateLimits.Limits())
}

// limiterOf builds a limiter of the given limits, with the configured
// Redis.
func limiterOf(b base, limits map[string]ratelimit.Limit) (*ratelimit.Limiter, error) {
	cfg := b.cfg
	var client redis.UniversalClient
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		fast := max(2*cfg.RateLimits.RedisTimeout, 100*time.Millisecond)
		opts.DialTimeout = 2 * fast
		opts.ReadTimeout = fast
		opts.WriteTimeout = fast
		opts.PoolTimeout = fast
		opts.MaxRetries = -1
		opts.DialerRetries = 1
		c := redis.NewClient(opts)
		b.stops.push(func() { _ = c.Close() })
		client = c
	}
	l, err := ratelimit.New(ratelimit.Config{Limits: limits, RedisTimeout: cfg.RateLimits.RedisTimeout}, client, b.logger, b.reg)
	if err != nil {
		return nil, err
	}
	b.stops.push(l.Close)
	return l, nil
}
