package app_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/httpapi/httpapitest"
	"hmp/internal/postgres"
)

// baseTime is where every fixture's clock starts: 12:00 in Kolkata, the
// default zone, so "today" is 2026-06-15 in India and in UTC alike.
var baseTime = time.Date(2026, 6, 15, 6, 30, 0, 0, time.UTC)

// today is the business date of baseTime in the default zone.
const today = "2026-06-15"

// morning is an occurredAt on today: 10:00 in Kolkata.
const morning = "2026-06-15T04:30:00Z"

// fixture is one running HMP with an organization, a property in the
// default zone (Asia/Kolkata) and a MANAGER assigned to it. The clock is
// frozen at baseTime.
type fixture struct {
	env   *apptest.Env
	clock *apptest.Clock
	org   apptest.Org
	prop  string
	mgrID string
	mgr   string
}

// smallPool keeps the many apps a parallel run starts within the test
// cluster's connection limit.
func smallPool(c *config.Config) { c.Pool = postgres.PoolConfig{MaxConns: 24, MinConns: 1} }

func setup(t *testing.T, opts ...func(*config.Config)) fixture {
	t.Helper()
	clock := &apptest.Clock{}
	clock.Set(baseTime)
	env := apptest.Start(t, cluster, append([]func(*config.Config){apptest.WithClock(clock), smallPool}, opts...)...)
	org := env.Signup("Sea Side Stays")
	prop := env.Property(org.AdminToken, "Sea View", "")
	mgrID, mgr := env.Manager(org.AdminToken, "manager@seaside.test", prop)
	return fixture{env: env, clock: clock, org: org, prop: prop, mgrID: mgrID, mgr: mgr}
}

// login returns a fresh access token.
func login(e *apptest.Env, email, password string) string {
	e.T.Helper()
	var out struct{ AccessToken string }
	e.Must(200, "POST", "/v1/auth/login", "", map[string]any{"email": email, "password": password}).JSON(e.T, &out)
	return out.AccessToken
}

// txn is a valid create body: a cash room revenue (or, for expenses,
// supplies) of amount on the morning of today.
func txn(prop string, amount int64) apptest.Txn {
	return apptest.Txn{PropertyID: prop, AmountCents: amount, PaymentMode: "cash", OccurredAt: morning}
}

// row is a revenue or an expense as the API returns it, with every field.
type row = httpapitest.Row

// plural maps a kind to its route segment.
func plural(kind string) string { return kind + "s" }

// create posts a row of kind (revenue or expense) and returns it.
func create(e *apptest.Env, token, kind string, body apptest.Txn) row {
	e.T.Helper()
	var r row
	e.Must(201, "POST", "/v1/finance/"+plural(kind), token, httpapitest.WithKind(kind, body)).JSON(e.T, &r)
	return r
}

// get reads one row.
func get(e *apptest.Env, token, kind, id string) row {
	e.T.Helper()
	var r row
	e.Must(200, "GET", "/v1/finance/"+plural(kind)+"/"+id, token, nil).JSON(e.T, &r)
	return r
}

// list walks every page of a list endpoint (query without the leading
// "?") and returns all rows in the order served.
func list(e *apptest.Env, token, kind, query string) []row {
	e.T.Helper()
	var all []row
	cursor := ""
	for page := 0; ; page++ {
		if page > 1000 {
			e.T.Fatalf("list %s %q: paging does not end", kind, query)
		}
		q := query
		if cursor != "" {
			q = joinQuery(q, "cursor="+url.QueryEscape(cursor))
		}
		var out struct {
			Items      []row   `json:"items"`
			NextCursor *string `json:"nextCursor"`
		}
		e.Must(200, "GET", "/v1/finance/"+plural(kind)+"?"+q, token, nil).JSON(e.T, &out)
		all = append(all, out.Items...)
		if out.NextCursor == nil {
			return all
		}
		cursor = *out.NextCursor
	}
}

func joinQuery(q, more string) string {
	if q == "" {
		return more
	}
	return q + "&" + more
}

// problem is an RFC 9457 problem+json body.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
		Value    any    `json:"value"`
	} `json:"errors"`
}

// locations lists the errors[].location of p.
func (p problem) locations() []string {
	locs := make([]string, len(p.Errors))
	for i, e := range p.Errors {
		locs[i] = e.Location
	}
	return locs
}

// mustProblem asserts that r is a problem+json answer with status and
// returns it decoded.
func mustProblem(t testing.TB, r *apptest.Response, status int) problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.Body)
	}
	var p problem
	r.JSON(t, &p)
	if p.Status != status {
		t.Fatalf("problem status = %d, want %d; body %s", p.Status, status, r.Body)
	}
	if p.Title == "" {
		t.Fatalf("problem without a title: %s", r.Body)
	}
	return p
}

// mustLocations asserts that p names every location in want.
func mustLocations(t testing.TB, p problem, want ...string) {
	t.Helper()
	got := p.locations()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Fatalf("errors[].location = %q, want it to include %q (problem %+v)", got, w, p)
		}
	}
}

// openAPIOperations lists every operation under /v1 that GET /openapi.json
// documents, sorted.
func openAPIOperations(e *apptest.Env) []httpapitest.Operation {
	e.T.Helper()
	return httpapitest.Operations(e.T, e.Must(200, "GET", "/openapi.json", "", nil).Body)
}
