package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"hmp/internal/config"
	"hmp/internal/ratelimit"
)

// registerEdge adds the flags of the HTTP edge (rate limits, Redis) to
// hmp serve.
func registerEdge(fs *flag.FlagSet, cfg *config.Config) {
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "Redis shared by instances: rate limit budgets and the report cache tier; empty: both per instance (HMP_REDIS_URL)")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 0, "API requests handled at once; 0: default 32; negative: unbounded (HMP_MAX_IN_FLIGHT)")
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "client connections the API listener holds open, more wait in the accept queue; 0: default 128; negative: unbounded (HMP_MAX_CONNS)")
	fs.DurationVar(&cfg.MaxQueueWait, "max-queue-wait", 0, "longest wait for an in-flight slot before 503 with Retry-After; 0: default 250ms (HMP_MAX_QUEUE_WAIT)")
	fs.Float64Var(&cfg.OrgShare, "org-share", 0, "fraction of the in-flight slots one organization may hold; 0: default 0.75 (HMP_ORG_SHARE)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 0, "deadline of every API request, down to its database calls; 0: default 10s; negative: none (HMP_REQUEST_TIMEOUT)")
	limit := func(l *ratelimit.Limit, name, help string) {
		fs.Var((*limitFlag)(l), name, help)
	}
	limit(&cfg.RateLimits.LoginPerEmail, "ratelimit-login-email", "logins per email, default 10/5m; COUNT/PERIOD or off (HMP_RATELIMIT_LOGIN_EMAIL)")
	limit(&cfg.RateLimits.LoginPerAddr, "ratelimit-login-addr", "logins per client address, default 60/1m; COUNT/PERIOD or off (HMP_RATELIMIT_LOGIN_ADDR)")
	limit(&cfg.RateLimits.SignupPerAddr, "ratelimit-signup-addr", "signups per client address, default 100/10m; COUNT/PERIOD or off (HMP_RATELIMIT_SIGNUP_ADDR)")
	limit(&cfg.RateLimits.WritesPerUser, "ratelimit-writes-user", "writes per user, default the profile's (phase3 100/60s, else off); COUNT/PERIOD or off (HMP_RATELIMIT_WRITES_USER)")
	limit(&cfg.RateLimits.WritesPerOrg, "ratelimit-writes-org", "writes per organization, default the profile's (phase3 1000/60s, else off); COUNT/PERIOD or off (HMP_RATELIMIT_WRITES_ORG)")
}

// limitFlag parses "COUNT/PERIOD" or "off" into a ratelimit.Limit.
type limitFlag ratelimit.Limit

func (f *limitFlag) String() string {
	if f == nil || f.Count == 0 {
		return ""
	}
	if f.Count < 0 {
		return "off"
	}
	return fmt.Sprintf("%d/%s", f.Count, f.Period)
}

func (f *limitFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		*f = limitFlag{}
		return nil
	case "off", "unlimited":
		*f = limitFlag{Count: -1}
		return nil
	}
	count, period, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n <= 0 {
		return fmt.Errorf("want COUNT/PERIOD such as 10/5m, got %q", s)
	}
	d, err := time.ParseDuration(period)
	if err != nil || d <= 0 {
		return fmt.Errorf("want COUNT/PERIOD such as 10/5m, got %q", s)
	}
	*f = limitFlag{Count: n, Period: d}
	return nil
}
