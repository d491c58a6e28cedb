package httpapi_test

import (
	"testing"
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
