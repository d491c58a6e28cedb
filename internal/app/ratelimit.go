package app

import (
	"github.com/redis/go-redis/v9"

	"hmp/internal/ratelimit"
)

// rateLimiter builds the limiter of the configured budgets, shared
// through Redis when RedisURL is set.
func rateLimiter(b base) (*ratelimit.Limiter, error) {
	return limiterOf(b, b.cfg.RateLimits.Limits())
}

// limiterOf builds a limiter of the given limits, with the configured
// Redis.
func limiterOf(b base, limits map[string]ratelimit.Limit) (*ratelimit.Limiter, error) {
	cfg := b.cfg
	var client redis.UniversalClient
	if cfg.RedisURL != "" {
		c, err := ratelimit.NewRedisClient(cfg.RedisURL, cfg.RateLimits.RedisTimeout)
		if err != nil {
			return nil, err
		}
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
