package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"hmp/internal/auth"
	"hmp/internal/clocktest"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/httpapi"
	"hmp/internal/idempotency"
	"hmp/internal/logtest"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/reconcile"
	"hmp/internal/reports"
	"hmp/internal/tenancy"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.Main(m, &cluster, tenancy.Migrations(), eventstore.Migrations(), finance.Migrations(), idempotency.Migrations(),
		reports.Migrations(), reconcile.Migrations())
}

// api is the whole HTTP edge over real services on a database of its own:
// tenancy, finance, the event history, Idempotency-Key, the reports read
// side (without its projector: report reads see no projected movement)
// and the reconciliation jobs.
type api struct {
	t       testing.TB
	handler http.Handler
	pool    *pgxpool.Pool
	// clock is every service's clock; it follows the wall clock until a
	// test sets it.
	clock *clocktest.Clock
	// logs holds everything the edge logged, debug level and up.
	logs *logtest.Buffer
}

// tokenTTL is how long the fixture's access tokens are valid.
const tokenTTL = time.Hour

// tokenSecret is the secret the fixture signs tokens with.
var tokenSecret = []byte(strings.Repeat("s", 32))

func setup(t testing.TB) *api {
	t.Helper()
	a := &api{t: t, pool: cluster.NewPool(t), clock: clocktest.Wall(), logs: &logtest.Buffer{}}
	a.handler = a.edge()
	return a
}

// edge builds an HTTP edge with services of its own over a's database, as
// one instance of HMP has.
func (a *api) edge() http.Handler {
	t := a.t
	t.Helper()
	ten, err := tenancy.New(a.pool, a.clock.Now, tenancy.Config{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ten.Close)
	tokens, err := auth.New(tokenSecret, tokenTTL, a.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := tokens.UseUsers(ten, 0); err != nil {
		t.Fatal(err)
	}
	fin := finance.New(a.pool, ten, a.clock.Now)
	logger := slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	jobs := reconcile.NewJobs(a.pool, reconcile.NewReconciler(a.pool, fin), reconcile.Config{}, logger, a.clock.Now)
	t.Cleanup(jobs.Stop)
	return httpapi.New(httpapi.Deps{
		Tenancy: ten, Tokens: tokens, Finance: fin, Events: eventstore.NewStore(a.pool),
		Idempotency: idempotency.NewStore(a.pool, a.clock.Now), Reports: reports.NewService(a.pool, ten, nil, a.clock.Now),
		Reconciliation: jobs, Logger: logger,
	})
}

// twin is a second instance of the edge over the same database, with
// services (and their caches) of its own, as a replica behind a load
// balancer.
func (a *api) twin() *api {
	b := *a
	b.handler = b.edge()
	return &b
}

// in returns a whose failures go to t (a subtest).
func (a *api) in(t *testing.T) *api {
	b := *a
	b.t = t
	return &b
}

// answer is a response: its status, headers and problem (if any).
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.Status, a.Body) }

// problem is an RFC 9457 answer.
type problem struct {
	Title  string
	Status int
	Detail string
	Errors []struct {
		Location string
		Message  string
	}
}

func (a answer) problem(t *testing.T) problem {
	t.Helper()
	var p problem
	if err := json.Unmarshal(a.Body, &p); err != nil {
		t.Fatalf("not a problem: %s", a.Body)
	}
	return p
}

// mustProblem asserts that r is a problem+json answer with status and a
// title, and returns it decoded.
func mustProblem(t *testing.T, r answer, status int) problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.Body)
	}
	p := r.problem(t)
	if p.Status != status {
		t.Fatalf("problem status = %d, want %d; body %s", p.Status, status, r.Body)
	}
	if p.Title == "" {
		t.Fatalf("problem without a title: %s", r.Body)
	}
	return p
}

// mustLocations asserts that p names every location in want.
func mustLocations(t *testing.T, p problem, want ...string) {
	t.Helper()
	got := make([]string, len(p.Errors))
	for i, e := range p.Errors {
		got[i] = e.Location
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Fatalf("errors[].location = %q, want it to include %q (problem %+v)", got, w, p)
		}
	}
}

// do sends body (a string is sent as is, anything else as JSON); headers
// are name, value pairs.
func (a *api) do(method, path, token string, body any, headers ...string) answer {
	a.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			a.t.Fatal(err)
		}
	}
	return a.send(method, path, token, raw, headers...)
}

// send sends raw (nil: no body); safe in a goroutine.
func (a *api) send(method, path, token string, raw []byte, headers ...string) answer {
	req := httptest.NewRequest(method, path, bytes.NewReader(raw))
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	return answer{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// must is do, failing unless the status is want; out receives the body.
func (a *api) must(want int, method, path, token string, body, out any, headers ...string) answer {
	a.t.Helper()
	res := a.do(method, path, token, body, headers...)
	if res.Status != want {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, res.Status, res.Body, want)
	}
	if out != nil {
		if err := json.Unmarshal(res.Body, out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, res.Body)
		}
	}
	return res
}

// org is a signed-up organization with one property and one MANAGER
// assigned to it.
type org struct {
	id, adminID, adminEmail, adminToken, propertyID, managerID, managerEmail string
}

const (
	adminPassword   = "correct horse"
	managerPassword = "manager pass"
)

func (a *api) org(name string) org {
	a.t.Helper()
	var o org
	var signup struct{ OrgID, UserID, AccessToken string }
	o.adminEmail = strings.ToLower(strings.ReplaceAll(name, " ", "")) + "@example.test"
	a.must(201, "POST", "/v1/auth/signup", "", map[string]any{"orgName": name, "email": o.adminEmail,
		"password": adminPassword, "displayName": "Admin"}, &signup)
	o.id, o.adminID, o.adminToken = signup.OrgID, signup.UserID, signup.AccessToken
	o.propertyID = a.property(o.adminToken, "North")
	o.managerEmail = "mgr." + o.adminEmail
	var mgr struct{ ID string }
	a.must(201, "POST", "/v1/users", o.adminToken, map[string]any{"email": o.managerEmail, "password": managerPassword,
		"displayName": "Manager", "role": "MANAGER", "propertyIds": []string{o.propertyID}}, &mgr)
	o.managerID = mgr.ID
	return o
}

// property creates a hotel in the default time zone and returns its id.
func (a *api) property(token, name string) string {
	a.t.Helper()
	var prop struct{ ID string }
	a.must(201, "POST", "/v1/properties", token, map[string]any{"name": name, "type": "hotel"}, &prop)
	return prop.ID
}

func (a *api) login(email, password string) string {
	a.t.Helper()
	var out struct{ AccessToken string }
	a.must(200, "POST", "/v1/auth/login", "", map[string]any{"email": email, "password": password}, &out)
	return out.AccessToken
}

// revenue is a valid create body for property.
func revenue(propertyID string) map[string]any {
	return map[string]any{"propertyId": propertyID, "source": "room", "amountCents": 5000, "paymentMode": "cash",
		"occurredAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}
}
