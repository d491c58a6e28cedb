package httpapi_test

import (
	"testing"
	"time"
)

// A token issued before its user was disabled stays refused once the
// user is enabled again; a fresh login works.
func TestTokenIssuedBeforeADisableStaysRefused(t *testing.T) {
	t.Parallel()
	a := setup(t)
	o := a.org("Not Before")
	old := a.login(o.managerEmail, managerPassword)
	a.must(200, "GET", "/v1/properties", old, nil, nil)

	a.must(200, "PATCH", "/v1/users/"+o.managerID, o.adminToken, map[string]any{"disabled": true}, nil)
	a.must(401, "GET", "/v1/properties", old, nil, nil)
	a.must(401, "POST", "/v1/auth/login", "", map[string]any{"email": o.managerEmail, "password": managerPassword}, nil)

	a.must(200, "PATCH", "/v1/users/"+o.managerID, o.adminToken, map[string]any{"disabled": false}, nil)
	a.must(401, "GET", "/v1/properties", old, nil, nil)
	fresh := a.login(o.managerEmail, managerPassword)
	a.must(200, "GET", "/v1/properties", fresh, nil, nil)
	a.must(401, "GET", "/v1/properties", old, nil, nil)

	// A role change is not a disable: the tokens of the moment go on.
	a.must(200, "PATCH", "/v1/users/"+o.managerID, o.adminToken, map[string]any{"role": "ADMIN"}, nil)
	a.must(201, "POST", "/v1/properties", fresh, map[string]any{"name": "South", "type": "hostel"}, nil)
}

// within polls until a request answers want, failing after the API's
// promise of 5 s from the change.
func (a *api) within(since time.Time, want int, method, path, token string, body any) {
	a.t.Helper()
	for {
		r := a.do(method, path, token, body)
		if r.Status == want {
			a.t.Logf("%s %s answered %d %s after the change", method, path, want, time.Since(since).Round(time.Millisecond))
			return
		}
		if time.Since(since) > 5*time.Second {
			a.t.Fatalf("%s %s: still %s 5 s after the change, want %d", method, path, r, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTokensFollowTheUser: disabling, demoting and logging out take effect
// at once on the instance that made the change and within 5 s on another
// instance sharing the database (a twin edge with caches of its own);
// re-enabling lets the user log in again but never brings back a token
// issued before the disable. (The rules of changing a user are tenancy's:
// internal/tenancy tests them.)
func TestTokensFollowTheUser(t *testing.T) {
	t.Parallel()
	a := setup(t)
	b := a.twin()
	o := a.org("Twin Resorts")
	mgr := a.login(o.managerEmail, managerPassword)
	b.must(200, "GET", "/v1/properties", mgr, nil, nil)

	t.Run("disable", func(t *testing.T) {
		a, b := a.in(t), b.in(t)
		var u struct {
			ID       string
			Disabled bool
			Role     string
		}
		since := time.Now()
		a.must(200, "PATCH", "/v1/users/"+o.managerID, o.adminToken, map[string]any{"disabled": true}, &u)
		if u.ID != o.managerID || !u.Disabled || u.Role != "MANAGER" {
			t.Errorf("patched user = %+v", u)
		}
		a.must(401, "GET", "/v1/properties", mgr, nil, nil)
		b.within(since, 401, "GET", "/v1/properties", mgr, nil)
		b.must(401, "POST", "/v1/auth/login", "", map[string]any{"email": o.managerEmail, "password": managerPassword}, nil)

		since = time.Now()
		a.must(200, "PATCH", "/v1/users/"+o.managerID, o.adminToken, map[string]any{"disabled": false}, nil)
		// The token from before the disable stays refused for good; a
		// fresh login works, on every instance within 5 s.
		fresh := b.login(o.managerEmail, managerPassword)
		b.within(since, 200, "GET", "/v1/properties", fresh, nil)
		a.must(200, "GET", "/v1/properties", fresh, nil, nil)
		a.must(401, "GET", "/v1/properties", mgr, nil, nil)
		b.must(401, "GET", "/v1/properties", mgr, nil, nil)
	})

	t.Run("demote", func(t *testing.T) {
		a, b := a.in(t), b.in(t)
		var u struct{ ID string }
		a.must(201, "POST", "/v1/users", o.adminToken, map[string]any{
			"email": "second@twin.test", "password": "second admin", "displayName": "Second", "role": "ADMIN"}, &u)
		tok := b.login("second@twin.test", "second admin")
		b.must(201, "POST", "/v1/properties", tok, map[string]any{"name": "East", "type": "hotel"}, nil)
		since := time.Now()
		a.must(200, "PATCH", "/v1/users/"+u.ID, o.adminToken, map[string]any{"role": "MANAGER"}, nil)
		b.within(since, 403, "POST", "/v1/properties", tok, map[string]any{"name": "West", "type": "hotel"})
	})

	t.Run("logout", func(t *testing.T) {
		a, b := a.in(t), b.in(t)
		tok := a.login(o.adminEmail, adminPassword)
		b.must(200, "GET", "/v1/properties", tok, nil, nil)
		since := time.Now()
		a.must(204, "POST", "/v1/auth/logout", tok, nil, nil)
		a.must(401, "GET", "/v1/properties", tok, nil, nil)
		b.within(since, 401, "GET", "/v1/properties", tok, nil)
		// Only that token: the admin's other session goes on.
		b.must(200, "GET", "/v1/properties", o.adminToken, nil, nil)
	})
}
