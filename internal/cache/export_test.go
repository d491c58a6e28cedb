package cache

import (
	"time"

	"github.com/sony/gobreaker/v2"
)

// BreakerOpen reports whether c's Redis breaker is open.
func BreakerOpen(c *Cache) bool { return c.redis.breaker.State() == gobreaker.StateOpen }

// TTL is c.ttl for tests.
func TTL(c *Cache, k Key) time.Duration { return c.ttl(k) }
