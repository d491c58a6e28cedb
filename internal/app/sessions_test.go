package app_test

import (
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
)

// twins starts two instances of HMP on one database, as two replicas
// behind a load balancer.
func twins(t *testing.T) (*apptest.Env, *apptest.Env) {
	t.Helper()
	db := cluster.NewDatabase(t)
	cfg := func(c *config.Config) {
		c.DatabaseURL = db
		c.Pool.MaxConns, c.Pool.MinConns = 8, 1
	}
	return apptest.Start(t, cluster, cfg), apptest.Start(t, cluster, cfg)
}

// within polls until a request answers want, failing after the API's
// promise of 5 s from the change.
func within(t *testing.T, since time.Time, e *apptest.Env, want int, method, path, token string, body any) {
	t.Helper()
	for {
		r := e.Do(method, path, token, body)
		if r.Status == want {
			t.Logf("%s %s answered %d %s after the change", method, path, want, time.Since(since).Round(time.Millisecond))
			return
		}
		if time.Since(since) > 5*time.Second {
			t.Fatalf("%s %s: still %s 5 s after the change, want %d", method, path, r, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTokensFollowTheUser: disabling, demoting and logging out take effect
// at once on the instance that made the change and within 5 s on another
// instance sharing the database; re-enabling lets the user log in again
// but never brings back a token issued before the disable. (The rules of
// changing a user are tenancy's: internal/tenancy tests them.)
func TestTokensFollowTheUser(t *testing.T) {
	t.Parallel()
	a, b := twins(t)
	org := a.Signup("Twin Resorts")
	prop := a.Property(org.AdminToken, "North", "")
	mgrID, mgr := a.Manager(org.AdminToken, "mgr@twin.test", prop)
	b.Must(200, "GET", "/v1/properties", mgr, nil)

	t.Run("disable", func(t *testing.T) {
		var u struct {
			ID       string
			Disabled bool
			Role     string
		}
		since := time.Now()
		a.Must(200, "PATCH", "/v1/users/"+mgrID, org.AdminToken, map[string]any{"disabled": true}).JSON(t, &u)
		if u.ID != mgrID || !u.Disabled || u.Role != "MANAGER" {
			t.Errorf("patched user = %+v", u)
		}
		a.Must(401, "GET", "/v1/properties", mgr, nil)
		within(t, since, b, 401, "GET", "/v1/properties", mgr, nil)
		b.Must(401, "POST", "/v1/auth/login", "", map[string]any{"email": "mgr@twin.test", "password": "manager pass"})

		since = time.Now()
		a.Must(200, "PATCH", "/v1/users/"+mgrID, org.AdminToken, map[string]any{"disabled": false})
		// The token from before the disable stays refused for good; a
		// fresh login works, on every instance within 5 s.
		fresh := login(b, "mgr@twin.test", "manager pass")
		within(t, since, b, 200, "GET", "/v1/properties", fresh, nil)
		a.Must(200, "GET", "/v1/properties", fresh, nil)
		a.Must(401, "GET", "/v1/properties", mgr, nil)
		b.Must(401, "GET", "/v1/properties", mgr, nil)
	})

	t.Run("demote", func(t *testing.T) {
		var u struct{ ID string }
		a.Must(201, "POST", "/v1/users", org.AdminToken, map[string]any{
			"email": "second@twin.test", "password": "second admin", "displayName": "Second", "role": "ADMIN"}).JSON(t, &u)
		tok := login(b, "second@twin.test", "second admin")
		b.Must(201, "POST", "/v1/properties", tok, map[string]any{"name": "East", "type": "hotel"})
		since := time.Now()
		a.Must(200, "PATCH", "/v1/users/"+u.ID, org.AdminToken, map[string]any{"role": "MANAGER"})
		within(t, since, b, 403, "POST", "/v1/properties", tok, map[string]any{"name": "West", "type": "hotel"})
	})

	t.Run("logout", func(t *testing.T) {
		tok := login(a, org.AdminEmail, "correct horse")
		b.Must(200, "GET", "/v1/properties", tok, nil)
		since := time.Now()
		a.Must(204, "POST", "/v1/auth/logout", tok, nil)
		a.Must(401, "GET", "/v1/properties", tok, nil)
		within(t, since, b, 401, "GET", "/v1/properties", tok, nil)
		// Only that token: the admin's other session goes on.
		b.Must(200, "GET", "/v1/properties", org.AdminToken, nil)
	})
}
