package ratelimit

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewRedisClient returns a client of the Redis at url that fails fast: a
// slow Redis costs a request at most about timeout (the limiter's
// RedisTimeout) before the in-process bucket decides, and a refused
// command is not retried.
func NewRedisClient(url string, timeout time.Duration) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	fast := max(2*timeout, 100*time.Millisecond)
	opts.DialTimeout = 2 * fast
	opts.ReadTimeout = fast
	opts.WriteTimeout = fast
	opts.PoolTimeout = fast
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	return redis.NewClient(opts), nil
}
