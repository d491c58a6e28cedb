package app

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"hmp/internal/ratelimit"
)

// rateLimiter builds the limiter of cfg's budgets, shared through Redis
// when cfg.RedisURL is set. Its Redis client fails fast (a slow Redis
// costs a request at most the limiter's 50 ms before the in-process
// bucket decides).
func (a *App) rateLimiter(cfg Config, reg prometheus.Registerer) (*ratelimit.Limiter, error) {
	return a.limiterOf(cfg, cfg.RateLimits.limits(), reg)
}

// limiterOf builds a limiter of the given limits, with cfg's Redis.
func (a *App) limiterOf(cfg Config, limits map[string]ratelimit.Limit, reg prometheus.Registerer) (*ratelimit.Limiter, error) {
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
		a.closers = append(a.closers, func() { _ = c.Close() })
		client = c
	}
	l, err := ratelimit.New(ratelimit.Config{Limits: limits, RedisTimeout: cfg.RateLimits.RedisTimeout}, client, a.logger, reg)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, l.Close)
	return l, nil
}
