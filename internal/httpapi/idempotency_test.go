package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"hmp/internal/auth"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/httpapi"
	"hmp/internal/idempotency"
	"hmp/internal/reconcile"
	"hmp/internal/reports"
	"hmp/internal/tenancy"
)

// idemAPI is the HTTP edge over real services on a database of its own, with
// no bus: a signed-up organization, its ADMIN and a MANAGER assigned to
// one property.
type idemAPI struct {
	t         *testing.T
	h         http.Handler
	jobs      *reconcile.Jobs
	admin     string // bearer tokens
	manager   string
	managerID string
	prop      string
}

func setupIdem(t *testing.T) *idemAPI {
	t.Helper()
	pool := cluster.NewPool(t)
	clock := time.Now
	ten, err := tenancy.New(pool, clock, tenancy.Config{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ten.Close)
	tokens, err := auth.New([]byte("a test signing secret of 32 bytes!"), time.Hour, clock)
	if err != nil {
		t.Fatal(err)
	}
	if err := tokens.UseUsers(ten, 0); err != nil {
		t.Fatal(err)
	}
	fin := finance.New(pool, ten, clock)
	logger := slog.New(slog.DiscardHandler)
	jobs := reconcile.NewJobs(pool, reconcile.NewReconciler(pool, fin), reconcile.Config{}, logger, clock)
	t.Cleanup(jobs.Stop)
	a := &idemAPI{t: t, jobs: jobs, h: httpapi.New(httpapi.Deps{
		Tenancy: ten, Tokens: tokens, Finance: fin, Events: eventstore.NewStore(pool),
		Idempotency: idempotency.NewStore(pool, clock), Reports: reports.NewService(pool, ten, nil, clock),
		Reconciliation: jobs, Logger: logger,
	})}
	var signup struct{ AccessToken string }
	a.must(201, "POST", "/v1/auth/signup", "", `{"orgName":"Idem Books","email":"admin@idem.test","password":"password1","displayName":"Ada"}`).json(&signup)
	a.admin = "Bearer " + signup.AccessToken
	var prop struct{ ID string }
	a.must(201, "POST", "/v1/properties", a.admin, `{"name":"Harbour","type":"hotel","timezone":"UTC"}`).json(&prop)
	a.prop = prop.ID
	var mgr struct{ ID string }
	a.must(201, "POST", "/v1/users", a.admin, `{"email":"mgr@idem.test","password":"password1","displayName":"Max","role":"MANAGER","propertyIds":["`+a.prop+`"]}`).json(&mgr)
	a.managerID = mgr.ID
	var login struct{ AccessToken string }
	a.must(200, "POST", "/v1/auth/login", "", `{"email":"mgr@idem.test","password":"password1"}`).json(&login)
	a.manager = "Bearer " + login.AccessToken
	return a
}

type idemAnswer struct {
	t *testing.T
	*httptest.ResponseRecorder
}

func (r idemAnswer) json(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body.Bytes(), v); err != nil {
		r.t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// do sends one request; headers are name, value pairs.
func (a *idemAPI) do(method, path, token, body string, headers ...string) idemAnswer {
	a.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, r)
	return idemAnswer{a.t, w}
}

func (a *idemAPI) must(status int, method, path, token, body string, headers ...string) idemAnswer {
	a.t.Helper()
	r := a.do(method, path, token, body, headers...)
	if r.Code != status {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, r.Code, r.Body, status)
	}
	return r
}

// pendingRevenue is a MANAGER's revenue, waiting for approval.
func (a *idemAPI) pendingRevenue(amount int64) string {
	a.t.Helper()
	var row struct{ ID string }
	a.must(201, "POST", "/v1/finance/revenues", a.manager, a.revenue(amount)).json(&row)
	return row.ID
}

func (a *idemAPI) revenue(amount int64) string {
	return fmt.Sprintf(`{"propertyId":%q,"source":"room","amountCents":%d,"paymentMode":"cash","occurredAt":%q}`,
		a.prop, amount, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
}

// keyedRoute is one route family that honours Idempotency-Key: prepare
// returns the request (made fresh for each subtest), the body of another
// request to the same route, and the status of the idemAnswer.
type keyedRoute struct {
	name    string
	prepare func(a *idemAPI) (method, path, token, body, other string, status int)
}

func keyedRoutes() []keyedRoute {
	today := time.Now().UTC().Format(time.DateOnly)
	return []keyedRoute{
		{"create property", func(a *idemAPI) (string, string, string, string, string, int) {
			return "POST", "/v1/properties", a.admin, `{"name":"Lagoon","type":"resort"}`, `{"name":"Lagoon 2","type":"resort"}`, 201
		}},
		{"create user", func(a *idemAPI) (string, string, string, string, string, int) {
			return "POST", "/v1/users", a.admin, `{"email":"u1@idem.test","password":"password1","displayName":"U","role":"ADMIN"}`,
				`{"email":"u2@idem.test","password":"password1","displayName":"U","role":"ADMIN"}`, 201
		}},
		{"assign properties", func(a *idemAPI) (string, string, string, string, string, int) {
			return "PUT", "/v1/users/" + a.managerID + "/properties", a.admin, `{"propertyIds":["` + a.prop + `"]}`, `{"propertyIds":[]}`, 200
		}},
		{"create revenue", func(a *idemAPI) (string, string, string, string, string, int) {
			return "POST", "/v1/finance/revenues", a.admin, a.revenue(1111), a.revenue(1112), 201
		}},
		{"create expense", func(a *idemAPI) (string, string, string, string, string, int) {
			body := fmt.Sprintf(`{"propertyId":%q,"category":"linen","amountCents":%%d,"paymentMode":"bank","occurredAt":%q}`,
				a.prop, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
			return "POST", "/v1/finance/expenses", a.admin, fmt.Sprintf(body, 700), fmt.Sprintf(body, 701), 201
		}},
		{"approve a row", func(a *idemAPI) (string, string, string, string, string, int) {
			return "POST", "/v1/finance/revenues/" + a.pendingRevenue(2000) + "/approve", a.admin, `{"notes":"ok"}`, `{"notes":"other"}`, 200
		}},
		{"reject a row", func(a *idemAPI) (string, string, string, string, string, int) {
			return "POST", "/v1/finance/revenues/" + a.pendingRevenue(2001) + "/reject", a.admin, `{}`, `{"notes":"why"}`, 200
		}},
		{"request a deletion", func(a *idemAPI) (string, string, string, string, string, int) {
			return "DELETE", "/v1/finance/revenues/" + a.pendingRevenue(2002), a.manager, "", `{}`, 202
		}},
		{"decide a deletion request", func(a *idemAPI) (string, string, string, string, string, int) {
			var req struct{ DeletionRequestID string }
			a.must(202, "DELETE", "/v1/finance/revenues/"+a.pendingRevenue(2003), a.manager, "").json(&req)
			return "POST", "/v1/finance/deletion-requests/" + req.DeletionRequestID + "/approve", a.admin, "", `{}`, 200
		}},
		{"grant a daily approval", func(a *idemAPI) (string, string, string, string, string, int) {
			return "POST", "/v1/finance/daily-approvals", a.admin, `{"managerUserId":"` + a.managerID + `","date":"` + today + `"}`,
				`{"managerUserId":"` + a.managerID + `","date":"` + time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly) + `"}`, 201
		}},
		{"record a cash count", func(a *idemAPI) (string, string, string, string, string, int) {
			return "POST", "/v1/reports/cash-counts", a.admin, `{"propertyId":"` + a.prop + `","date":"` + today + `","countedClosingCents":500}`,
				`{"propertyId":"` + a.prop + `","date":"` + today + `","countedClosingCents":600}`, 201
		}},
		{"start a reconciliation", func(a *idemAPI) (string, string, string, string, string, int) {
			return "POST", "/v1/reports/reconciliation", a.admin, `{"propertyId":"` + a.prop + `"}`, `{}`, 202
		}},
	}
}

// TestIdempotencyKeyOnEveryRouteFamily: every create and decision a client
// may retry answers a retry with the same key and body by replaying the
// original idemAnswer (Idempotency-Replayed: true), refuses the key with
// another body (409), and refuses a key that is not printable ASCII (422
// on header.Idempotency-Key), at the one edge mechanism.
func TestIdempotencyKeyOnEveryRouteFamily(t *testing.T) {
	t.Parallel()
	for _, route := range keyedRoutes() {
		t.Run(route.name, func(t *testing.T) {
			t.Parallel()
			t.Run("the same key and body replay the original idemAnswer", func(t *testing.T) {
				t.Parallel()
				a := setupIdem(t)
				method, path, token, body, _, status := route.prepare(a)
				first := a.must(status, method, path, token, body, "Idempotency-Key", "k-replay")
				if h := first.Header().Get("Idempotency-Replayed"); h != "" {
					t.Fatalf("the original idemAnswer says Idempotency-Replayed: %q", h)
				}
				for range 2 {
					again := a.must(status, method, path, token, body, "Idempotency-Key", "k-replay")
					if h := again.Header().Get("Idempotency-Replayed"); h != "true" {
						t.Fatalf("Idempotency-Replayed = %q, want true; idemAnswer %s", h, again.Body)
					}
					if !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) {
						t.Fatalf("replay %s, want the original %s", again.Body, first.Body)
					}
					for _, h := range []string{"X-Consistency-Token", "ETag", "Location", "Content-Type"} {
						if again.Header().Get(h) != first.Header().Get(h) {
							t.Errorf("replayed %s %q, original %q", h, again.Header().Get(h), first.Header().Get(h))
						}
					}
				}
			})
			t.Run("the same key with another body is a conflict", func(t *testing.T) {
				t.Parallel()
				a := setupIdem(t)
				method, path, token, body, other, status := route.prepare(a)
				a.must(status, method, path, token, body, "Idempotency-Key", "k-other")
				r := a.must(409, method, path, token, other, "Idempotency-Key", "k-other")
				if !strings.Contains(r.Body.String(), "different request body") {
					t.Errorf("409 body %s", r.Body)
				}
			})
			t.Run("a key that is not printable ASCII is refused", func(t *testing.T) {
				t.Parallel()
				a := setupIdem(t)
				method, path, token, body, _, _ := route.prepare(a)
				for _, key := range []string{"bad\xff\xfekey", "tab\tkey", strings.Repeat("k", 256)} {
					r := a.must(422, method, path, token, body, "Idempotency-Key", key)
					var p struct {
						Errors []struct{ Location string }
					}
					r.json(&p)
					if len(p.Errors) != 1 || p.Errors[0].Location != "header.Idempotency-Key" {
						t.Errorf("key %q: problem %s, want one error at header.Idempotency-Key", key, r.Body)
					}
				}
			})
		})
	}
}

// TestIdempotencyKeyRefusedRequestNotRemembered: a request refused with a
// 4xx leaves its key free; the corrected request runs and is original.
func TestIdempotencyKeyRefusedRequestNotRemembered(t *testing.T) {
	t.Parallel()
	a := setupIdem(t)
	a.must(422, "POST", "/v1/properties", a.admin, `{"name":"Bad","type":"castle"}`, "Idempotency-Key", "fix-and-retry")
	r := a.must(201, "POST", "/v1/properties", a.admin, `{"name":"Good","type":"hotel"}`, "Idempotency-Key", "fix-and-retry")
	if r.Header().Get("Idempotency-Replayed") != "" {
		t.Fatalf("the corrected request was answered as a replay: %s", r.Body)
	}
}

// TestIdempotencyKeyConcurrentCreates: of concurrent creates with one key,
// one writes; each other answers its result or 409, and one property
// exists.
func TestIdempotencyKeyConcurrentCreates(t *testing.T) {
	t.Parallel()
	a := setupIdem(t)
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	answers := make([]*httptest.ResponseRecorder, n)
	for i := range n {
		wg.Go(func() {
			<-start
			r := httptest.NewRequest("POST", "/v1/properties", strings.NewReader(`{"name":"Stampede","type":"hostel"}`))
			r.Header.Set("Authorization", a.admin)
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Idempotency-Key", "stampede")
			answers[i] = httptest.NewRecorder()
			a.h.ServeHTTP(answers[i], r)
		})
	}
	close(start)
	wg.Wait()
	originals := 0
	for i, w := range answers {
		switch {
		case w.Code == 201 && w.Header().Get("Idempotency-Replayed") == "":
			originals++
		case w.Code == 201, w.Code == 409:
		default:
			t.Fatalf("request %d: %d %s, want 201 or 409", i, w.Code, w.Body)
		}
	}
	if originals != 1 {
		t.Fatalf("%d original answers, want 1", originals)
	}
	var list struct{ Items []struct{ Name string } }
	a.must(200, "GET", "/v1/properties", a.admin, "").json(&list)
	got := 0
	for _, p := range list.Items {
		if p.Name == "Stampede" {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("%d properties written, want 1", got)
	}
}
