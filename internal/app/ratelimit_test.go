package app_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/ratelimit"
	"hmp/internal/redistest"
)

func limits(f func(*config.RateLimits)) func(*config.Config) {
	return func(c *config.Config) { f(&c.RateLimits) }
}

// want429 fails unless r is a 429 problem with a Retry-After of at least
// one second.
func want429(t *testing.T, what string, r *apptest.Response) {
	t.Helper()
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.Status != 429 || err != nil || secs < 1 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("%s: got %s (Retry-After %q), want 429 problem+json with Retry-After", what, r, r.Header.Get("Retry-After"))
	}
}

// TestLoginFlood: logins for one email are refused with 429 and
// Retry-After once the configured count is spent, whatever the password
// (the right one included), while another email still logs in.
func TestLoginFlood(t *testing.T) {
	t.Parallel()
	const perEmail = 5
	env := apptest.Start(t, cluster, smallPool, limits(func(l *config.RateLimits) {
		l.LoginPerEmail = ratelimit.Limit{Count: perEmail, Period: time.Hour}
	}))
	org := env.Signup("Flood Inn")
	other := env.Signup("Calm Inn")
	attempts := 0
	for {
		attempts++
		r := env.Do("POST", "/v1/auth/login", "", map[string]any{"email": org.AdminEmail, "password": "guess " + strconv.Itoa(attempts)})
		if r.Status == 429 {
			want429(t, "flooded login", r)
			break
		}
		if r.Status != 401 {
			t.Fatalf("attempt %d: %s", attempts, r)
		}
		if attempts > 100 {
			t.Fatal("no 429 after 100 attempts")
		}
	}
	if attempts != perEmail+1 {
		t.Errorf("first 429 at attempt %d, want %d", attempts, perEmail+1)
	}
	t.Logf("attempts for one email until the first 429: %d", attempts)
	want429(t, "right password after the flood", env.Do("POST", "/v1/auth/login", "", map[string]any{"email": org.AdminEmail, "password": "correct horse"}))
	// The email is canonicalised: case and spaces do not buy a new budget.
	want429(t, "same email in capitals", env.Do("POST", "/v1/auth/login", "", map[string]any{"email": " " + strings.ToUpper(org.AdminEmail), "password": "x"}))
	env.Must(200, "POST", "/v1/auth/login", "", map[string]any{"email": other.AdminEmail, "password": "correct horse"})
}

// TestSignupAndLoginPerAddress: one address is limited across emails.
func TestSignupAndLoginPerAddress(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster, smallPool, limits(func(l *config.RateLimits) {
		l.SignupPerAddr = ratelimit.Limit{Count: 2, Period: time.Hour}
		l.LoginPerAddr = ratelimit.Limit{Count: 3, Period: time.Hour}
	}))
	env.Signup("One")
	env.Signup("Two")
	want429(t, "third signup", env.Do("POST", "/v1/auth/signup", "", map[string]any{
		"orgName": "Three", "email": "three@example.test", "password": "correct horse", "displayName": "T"}))
	for i := range 3 {
		env.Must(401, "POST", "/v1/auth/login", "", map[string]any{"email": "nobody" + strconv.Itoa(i) + "@example.test", "password": "x"})
	}
	want429(t, "fourth login from the address", env.Do("POST", "/v1/auth/login", "", map[string]any{"email": "one@example.test", "password": "correct horse"}))
}

// TestWriteLimitPhase3: the phase3 profile limits writes per user; reads
// go on; baseline and phase1 keep writes unlimited.
func TestWriteLimitPhase3(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"baseline", "phase1", "phase2"} {
		c := config.Config{Profile: p}.WithDefaults()
		if !c.RateLimits.WritesPerUser.Unlimited() || !c.RateLimits.WritesPerOrg.Unlimited() {
			t.Errorf("profile %s limits writes: %v %v", p, c.RateLimits.WritesPerUser, c.RateLimits.WritesPerOrg)
		}
	}
	if c := (config.Config{Profile: "phase3"}).WithDefaults(); c.RateLimits.WritesPerUser != (ratelimit.Limit{Count: 100, Period: time.Minute}) {
		t.Errorf("phase3 writes per user = %v, want 100 per 1m", c.RateLimits.WritesPerUser)
	}
	env := apptest.Start(t, cluster, smallPool, func(c *config.Config) {
		c.Profile = "phase3"
		c.RateLimits.WritesPerUser = ratelimit.Limit{Count: 3, Period: time.Hour}
	})
	org := env.Signup("Busy Org")
	env.Property(org.AdminToken, "P1", "")
	env.Property(org.AdminToken, "P2", "")
	env.Property(org.AdminToken, "P3", "")
	want429(t, "4th write", env.Do("POST", "/v1/properties", org.AdminToken, map[string]any{"name": "P4", "type": "hotel"}))
	env.Must(200, "GET", "/v1/properties", org.AdminToken, nil)
}

// TestLoginLimitSharedThroughRedis: two instances sharing Redis share one
// login budget per email; with Redis killed both still answer (in-process
// budgets), never 5xx.
func TestLoginLimitSharedThroughRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	db := cluster.NewDatabase(t)
	cfg := func(c *config.Config) {
		c.DatabaseURL = db
		c.RedisURL = rs.URL
		c.Pool.MaxConns, c.Pool.MinConns = 8, 1
		c.RateLimits.LoginPerEmail = ratelimit.Limit{Count: 4, Period: time.Hour}
		c.RateLimits.RedisTimeout = 2 * time.Second // a busy test machine is not a Redis outage
	}
	a := apptest.Start(t, cluster, cfg)
	b := apptest.Start(t, cluster, cfg)
	org := a.Signup("Twin Towers")
	login := func(e *apptest.Env) *apptest.Response {
		return e.Do("POST", "/v1/auth/login", "", map[string]any{"email": org.AdminEmail, "password": "wrong password"})
	}
	for i := range 4 {
		e := a
		if i%2 == 1 {
			e = b
		}
		if r := login(e); r.Status != 401 {
			t.Fatalf("attempt %d: %s", i+1, r)
		}
	}
	want429(t, "5th attempt on instance a", login(a))
	want429(t, "5th attempt on instance b", login(b))

	rs.Kill()
	for i, e := range []*apptest.Env{a, b, a, b} {
		r := e.Do("POST", "/v1/auth/login", "", map[string]any{"email": "fresh" + strconv.Itoa(i) + "@example.test", "password": "x"})
		if r.Status != 401 {
			t.Errorf("with Redis down, login %d: %s, want 401 (served in process)", i, r)
		}
	}
	e := a.Do("GET", "/metrics", "", nil)
	if !strings.Contains(string(e.Body), "hmp_ratelimit_rejections_total{limit=\"login_email\"} 1") {
		t.Errorf("metrics lack the rejection:\n%s", grepLines(string(e.Body), "hmp_ratelimit"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
