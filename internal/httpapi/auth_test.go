package httpapi_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"hmp/internal/httpapi/httpapitest"

	"github.com/golang-jwt/jwt/v5"
)

// signed returns a token with claims, signed with secret by method.
func signed(t *testing.T, method jwt.SigningMethod, secret any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(secret)
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return s
}

// openAPIOperations lists every operation under /v1 that GET /openapi.json
// documents, sorted.
func (a *api) openAPIOperations() []httpapitest.Operation {
	a.t.Helper()
	return httpapitest.Operations(a.t, a.must(200, "GET", "/openapi.json", "", nil, nil).Body)
}

// TestAuthentication: every /v1 route but signup and login wants a valid
// bearer token; a missing, malformed, forged or expired one is 401
// problem+json, whatever the route and whatever the body.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	a := setup(t)
	a.clock.Set(baseTime)
	o := a.org("Sea Side Stays")
	ops := a.openAPIOperations()

	// A token an attacker could make: the claims HMP issues (org, role,
	// subject, issuer, expiry) for the real admin, with the wrong key.
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"iss": "hmp", "sub": o.adminID, "org": o.id, "role": "ADMIN",
			"iat": baseTime.Unix(), "exp": baseTime.Add(time.Hour).Unix(),
		}
		if mod != nil {
			mod(c)
		}
		return c
	}
	// Control: the right key and these claims are accepted, so every
	// refusal below is about the one thing changed.
	a.must(200, "GET", "/v1/properties", signed(t, jwt.SigningMethodHS256, tokenSecret, claims(nil)), nil, nil)

	// An expired token is a real one whose time ran out on the edge's
	// clock.
	expiring := a.login(o.adminEmail, adminPassword)
	a.clock.Advance(tokenTTL + time.Second)
	unsigned, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	later := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		return claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = baseTime.Add(tokenTTL).Unix(), baseTime.Add(tokenTTL+time.Hour).Unix()
			if mod != nil {
				mod(c)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		header string // the whole Authorization header; "" sends none
		detail string // a part of the problem detail
	}{
		{"no Authorization header", "", "missing bearer token"},
		{"an empty bearer token", "Bearer ", "missing bearer token"},
		{"a bare Bearer", "Bearer", "missing bearer token"},
		{"a Basic credential", "Basic YWRtaW46cGFzc3dvcmQ=", "missing bearer token"},
		{"not a JWT", "Bearer not-a-token", "invalid token"},
		{"three dots", "Bearer a.b.c", "invalid token"},
		{"a truncated token", "Bearer " + o.adminToken[:len(o.adminToken)-4], "invalid token"},
		{"forged with another secret", "Bearer " + signed(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), later(nil)), "invalid token"},
		{"forged with another algorithm", "Bearer " + signed(t, jwt.SigningMethodHS512, tokenSecret, later(nil)), "invalid token"},
		{"unsigned (alg none)", "Bearer " + unsigned, "invalid token"},
		{"expired", "Bearer " + expiring, "token expired"},
		{"without an expiry", "Bearer " + signed(t, jwt.SigningMethodHS256, tokenSecret, later(func(c jwt.MapClaims) { delete(c, "exp") })), "invalid token"},
		{"issued by someone else", "Bearer " + signed(t, jwt.SigningMethodHS256, tokenSecret, later(func(c jwt.MapClaims) { c["iss"] = "evil" })), "invalid token"},
		{"an unknown role", "Bearer " + signed(t, jwt.SigningMethodHS256, tokenSecret, later(func(c jwt.MapClaims) { c["role"] = "ROOT" })), "invalid token claims"},
		{"an org that is not a UUID", "Bearer " + signed(t, jwt.SigningMethodHS256, tokenSecret, later(func(c jwt.MapClaims) { c["org"] = "*" })), "invalid token claims"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := a.in(t)
			for _, op := range ops {
				if !op.Secured || op.Admin { // operator routes: their own token, tested with them
					continue
				}
				path := strings.ReplaceAll(op.Path, "{id}", "01900000-0000-7000-8000-000000000000")
				var headers []string
				if tc.header != "" {
					headers = []string{"Authorization", tc.header}
				}
				r := a.do(op.Method, path, "", `{}`, headers...)
				p := mustProblem(t, r, 401)
				if !strings.Contains(p.Detail, tc.detail) {
					t.Fatalf("%s %s: detail %q, want %q", op.Method, op.Path, p.Detail, tc.detail)
				}
				if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%s %s: WWW-Authenticate = %q", op.Method, op.Path, r.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}

	t.Run("only signup and login are public", func(t *testing.T) {
		var public []string
		for _, op := range ops {
			if !op.Secured {
				public = append(public, op.Method+" "+op.Path)
			}
		}
		slices.Sort(public)
		if want := []string{"POST /v1/auth/login", "POST /v1/auth/signup"}; !slices.Equal(public, want) {
			t.Fatalf("public /v1 operations = %q, want %q", public, want)
		}
	})

	t.Run("a wrong password or an unknown email is 401", func(t *testing.T) {
		a := a.in(t)
		for _, body := range []map[string]any{
			{"email": o.adminEmail, "password": "wrong horse"},
			{"email": "nobody@example.test", "password": adminPassword},
			{"email": o.adminEmail, "password": ""},
		} {
			p := mustProblem(t, a.do("POST", "/v1/auth/login", "", body), 401)
			if p.Detail != "invalid email or password" {
				t.Fatalf("login detail = %q: must not tell which part was wrong", p.Detail)
			}
		}
	})
}

// TestPasswordsNeverLeak sends passwords every way a client can, right and
// wrong, and checks that no answer and no log line carries one.
func TestPasswordsNeverLeak(t *testing.T) {
	t.Parallel()
	a := setup(t)
	o := a.org("Sea Side Stays")
	admin := o.adminToken
	mgr := a.login(o.managerEmail, managerPassword)
	var passwords []string
	pw := func(p string) string { passwords = append(passwords, p); return p }
	var responses []answer
	do := func(method, path, token string, body any) answer {
		r := a.do(method, path, token, body)
		responses = append(responses, r)
		return r
	}
	signup := func(password string, extra ...string) map[string]any {
		b := map[string]any{"orgName": "Leaky Inn", "email": "owner@leaky.test", "password": password, "displayName": "Owner"}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == "" {
				delete(b, extra[i])
			} else {
				b[extra[i]] = extra[i+1]
			}
		}
		return b
	}

	do("POST", "/v1/auth/signup", "", signup(pw("Signup-Secret-7fa2")))
	do("POST", "/v1/auth/login", "", map[string]any{"email": "owner@leaky.test", "password": "Signup-Secret-7fa2"})
	do("POST", "/v1/auth/login", "", map[string]any{"email": "owner@leaky.test", "password": pw("Wrong-Secret-19cd")})
	do("POST", "/v1/auth/login", "", map[string]any{"email": "owner@leaky.test", "password": pw("Extra-Secret-5b1e"), "remember": true})
	do("POST", "/v1/auth/login", "", `{"email": "owner@leaky.test", "password": "`+pw("Broken-Secret-8d0c")+`"`)
	do("POST", "/v1/auth/signup", "", signup(pw("Taken-Secret-3c9a")))                                                   // email taken: 409
	do("POST", "/v1/auth/signup", "", signup(pw("Missing-Secret-4e7b"), "email", "other@leaky.test", "displayName", "")) // 422 missing field
	do("POST", "/v1/auth/signup", "", signup(pw("Unknown-Secret-6a2f"), "email", "x@leaky.test", "plan", "gold"))        // 422 unknown field
	do("POST", "/v1/auth/signup", "", signup(pw("Sh0rt!")))                                                              // 422 too short
	do("POST", "/v1/auth/signup", "", signup(pw(strings.Repeat("Long-Secret-", 7))))                                     // 422 too long
	do("POST", "/v1/auth/signup", "", signup(pw("BadEmail-Secret-2b8e"), "email", "not an email"))
	do("POST", "/v1/auth/signup", "", `{"orgName": "Leaky", "password": "`+pw("Malformed-Secret-0f3d")+`", `)
	do("POST", "/v1/users", admin, map[string]any{"email": "clerk@leaky.test", "password": pw("User-Secret-9e4a"),
		"displayName": "Clerk", "role": "MANAGER", "propertyIds": []string{o.propertyID}})
	do("POST", "/v1/users", admin, map[string]any{"email": "clerk2@leaky.test", "password": pw("tiny"), "displayName": "Clerk", "role": "MANAGER"})
	do("POST", "/v1/users", admin, map[string]any{"email": "clerk3@leaky.test", "password": pw("Role-Secret-1c5d"), "displayName": "Clerk", "role": "OWNER"})
	do("POST", "/v1/users", mgr, map[string]any{"email": "clerk4@leaky.test", "password": pw("Forbidden-Secret-7d2e"), "displayName": "Clerk", "role": "ADMIN"})
	do("POST", "/v1/users", admin, map[string]any{"email": "clerk@leaky.test", "password": pw("Dup-Secret-6f1b"), "displayName": "Clerk", "role": "MANAGER"})
	do("POST", "/v1/auth/login", "", map[string]any{"email": "clerk@leaky.test", "password": "User-Secret-9e4a"})

	wantStatus := []int{201, 200, 401, 422, 400, 409, 422, 422, 422, 422, 422, 400, 201, 422, 422, 403, 409, 200}
	for i, r := range responses {
		if r.Status != wantStatus[i] {
			t.Errorf("request %d: got %s, want %d", i, r, wantStatus[i])
		}
		for _, p := range passwords {
			if strings.Contains(string(r.Body), p) {
				t.Errorf("response %d (%d) carries the password %q: %s", i, r.Status, p, r.Body)
			}
		}
	}
	logs := a.logs.String()
	if !strings.Contains(logs, "/v1/auth/login") {
		t.Fatalf("the edge logged no request, so the logs prove nothing:\n%s", logs)
	}
	for _, p := range append(passwords, adminPassword, managerPassword) {
		if strings.Contains(logs, p) {
			t.Errorf("the logs carry the password %q", p)
		}
	}
}
