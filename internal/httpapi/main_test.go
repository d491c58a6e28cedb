package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"hmp/internal/auth"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/httpapi"
	"hmp/internal/idempotency"
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

// api is the whole HTTP edge over real services on a database of its own.
type api struct {
	t       *testing.T
	handler http.Handler
}

func setup(t *testing.T) *api {
	t.Helper()
	pool := cluster.NewPool(t)
	ten, err := tenancy.New(pool, time.Now, tenancy.Config{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ten.Close)
	tokens, err := auth.New([]byte(strings.Repeat("s", 32)), time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := tokens.UseUsers(ten, 0); err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(httpapi.Deps{
		Tenancy: ten, Tokens: tokens, Finance: finance.New(pool, ten, time.Now),
		Events: eventstore.NewStore(pool), Idempotency: idempotency.NewStore(pool, time.Now),
	})
	return &api{t: t, handler: h}
}

// answer is a response: its status, headers and problem (if any).
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// problem is an RFC 9457 answer.
type problem struct {
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

// do sends body (a string is sent as is, anything else as JSON).
func (a *api) do(method, path, token string, body any) answer {
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
	req := httptest.NewRequest(method, path, bytes.NewReader(raw))
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	return answer{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// must is do, failing unless the status is want; out receives the body.
func (a *api) must(want int, method, path, token string, body, out any) answer {
	a.t.Helper()
	res := a.do(method, path, token, body)
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
	adminToken, propertyID, managerID, managerEmail string
}

const managerPassword = "manager pass"

func (a *api) org(name string) org {
	a.t.Helper()
	var o org
	var signup struct{ AccessToken string }
	email := strings.ToLower(strings.ReplaceAll(name, " ", "")) + "@example.test"
	a.must(201, "POST", "/v1/auth/signup", "", map[string]any{"orgName": name, "email": email,
		"password": "correct horse", "displayName": "Admin"}, &signup)
	o.adminToken = signup.AccessToken
	var prop struct{ ID string }
	a.must(201, "POST", "/v1/properties", o.adminToken, map[string]any{"name": "North", "type": "hotel"}, &prop)
	o.propertyID = prop.ID
	o.managerEmail = "mgr." + email
	var mgr struct{ ID string }
	a.must(201, "POST", "/v1/users", o.adminToken, map[string]any{"email": o.managerEmail, "password": managerPassword,
		"displayName": "Manager", "role": "MANAGER", "propertyIds": []string{o.propertyID}}, &mgr)
	o.managerID = mgr.ID
	return o
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
