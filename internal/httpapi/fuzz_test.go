package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hostile input through the HTTP edge over a real socket (net/http's
// parsing, the middleware, huma's decoding and validation, the services,
// PostgreSQL). The properties, for any bytes: no 5xx (a panic is a 500
// from the recoverer), and a rejected request writes nothing. `go test`
// runs the seeds; `go test -fuzz FuzzWriteBodies -run '^$' ./internal/httpapi/`
// searches.

// fuzzTarget is one edge with an organization to aim at: its ADMIN, a
// MANAGER of its property, a revenue, an expense and a pending deletion
// request.
type fuzzTarget struct {
	a                         *api
	url                       string
	admin, manager, managerID string
	prop, revenue, expense    string
	deletion, pendingRevenue  string
	mu                        sync.Mutex // one request at a time: the no-write check needs a still database
}

func newFuzzTarget(f *testing.F) *fuzzTarget {
	a := setup(f)
	srv := httptest.NewServer(a.handler)
	f.Cleanup(srv.Close)
	o := a.org("Fuzz Org")
	x := &fuzzTarget{a: a, url: srv.URL, admin: o.adminToken, prop: o.propertyID, managerID: o.managerID}
	x.manager = a.login(o.managerEmail, managerPassword)
	at := time.Now().UTC().AddDate(0, 0, -1).Format(time.RFC3339)
	txn := func(token, kind, mode string, cents int64) string {
		body := map[string]any{"propertyId": x.prop, "amountCents": cents, "paymentMode": mode, "occurredAt": at}
		if kind == "revenues" {
			body["source"] = "room"
		} else {
			body["category"] = "food"
		}
		var out struct{ ID string }
		a.must(201, "POST", "/v1/finance/"+kind, token, body, &out)
		return out.ID
	}
	x.revenue = txn(x.admin, "revenues", "cash", 5000)
	x.expense = txn(x.admin, "expenses", "bank", 700)
	x.pendingRevenue = txn(x.manager, "revenues", "cash", 900)
	var del struct{ DeletionRequestID string }
	a.must(202, "DELETE", "/v1/finance/revenues/"+x.pendingRevenue, x.manager, nil, &del)
	x.deletion = del.DeletionRequestID
	return x
}

// send sends one request over the socket; an error is one the client
// library raised before the wire.
func (x *fuzzTarget) send(method, path, token string, body []byte, headers ...string) (answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, x.url+path, rd)
	if err != nil {
		return answer{}, fmt.Errorf("new request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, fmt.Errorf("read %s %s: %w", method, path, err)
	}
	return answer{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// path fills a route's placeholders with the target's ids.
func (x *fuzzTarget) path(p string) string {
	return strings.NewReplacer("{rev}", x.revenue, "{exp}", x.expense, "{del}", x.deletion,
		"{mgr}", x.managerID, "{prop}", x.prop, "{pend}", x.pendingRevenue).Replace(p)
}

// fingerprint digests every table a request writes.
func (x *fuzzTarget) fingerprint(t *testing.T) string {
	t.Helper()
	var fp string
	err := x.a.pool.QueryRow(context.Background(), `SELECT concat_ws('|',
		(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM orgs t),
		(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM users t),
		(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM user_logins t),
		(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM properties t),
		(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM manager_properties t),
		(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM transactions t),
		(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM deletion_requests t),
		(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM daily_approvals t),
		(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM cash_counts t),
		(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM idempotency_keys t),
		(SELECT count(*) FROM events))`).Scan(&fp)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	return fp
}

// bodyRoute is a route that takes a JSON body.
type bodyRoute struct {
	method, path string
	manager      bool   // sent with the MANAGER's token instead of the ADMIN's
	key          string // an Idempotency-Key to send, if any
}

var bodyRoutes = []bodyRoute{
	{"POST", "/v1/auth/signup", false, ""},
	{"POST", "/v1/auth/login", false, ""},
	{"POST", "/v1/users", false, ""},
	{"PUT", "/v1/users/{mgr}/properties", false, ""},
	{"POST", "/v1/properties", false, ""},
	{"POST", "/v1/finance/revenues", false, ""},
	{"POST", "/v1/finance/expenses", true, "fuzz-key"},
	{"PATCH", "/v1/finance/revenues/{rev}", false, ""},
	{"PATCH", "/v1/finance/expenses/{exp}", true, ""},
	{"POST", "/v1/finance/revenues/{pend}/approve", false, ""},
	{"POST", "/v1/finance/expenses/{exp}/reject", false, ""},
	{"POST", "/v1/finance/deletion-requests/{del}/reject", false, ""},
	{"POST", "/v1/finance/daily-approvals", false, ""},
	{"POST", "/v1/reports/cash-counts", true, ""},
	{"POST", "/v1/reports/reconciliation", false, ""},
}

// bodySeeds are valid bodies of each route family and the nasty inputs a
// hostile client sends any of them.
var bodySeeds = []string{
	`{"orgName":"Seed Org","email":"seed@example.test","password":"long enough pw","displayName":"Seed"}`,
	`{"email":"fuzz.manager@example.test","password":"manager pass"}`,
	`{"email":"new.user@example.test","password":"long enough","displayName":"New","role":"MANAGER","propertyIds":[]}`,
	`{"propertyIds":["00000000-0000-0000-0000-000000000000"]}`,
	`{"name":"Seed Hotel","type":"resort","timezone":"America/New_York","currency":"USD"}`,
	`{"propertyId":"{prop}","source":"room","amountCents":100,"paymentMode":"cash","occurredAt":"2026-01-02T03:04:05Z"}`,
	`{"propertyId":"{prop}","category":"food","amountCents":1000000000000000,"paymentMode":"bank","occurredAt":"2026-01-02T03:04:05+05:30","bankReference":"x","description":"y"}`,
	`{"amountCents":250}`,
	`{"occurredAt":"2000-01-01T00:00:00Z","paymentMode":"bank"}`,
	`{"notes":"ok"}`,
	`{"managerUserId":"{mgr}","date":"2026-01-02"}`,
	`{"propertyId":"{prop}","date":"2026-01-02","countedClosingCents":0}`,
	`{"propertyId":"{prop}"}`,
	`{}`,
	``,
	`null`,
	`[]`,
	`"string"`,
	`{"amountCents":9223372036854775807}`,
	`{"amountCents":-9223372036854775808}`,
	`{"amountCents":1e400}`,
	`{"amountCents":1.5}`,
	`{"amountCents":"100"}`,
	`{"amountCents":null,"propertyId":null}`,
	`{"propertyId":"{prop}","source":"room","amountCents":100,"paymentMode":"cash","occurredAt":"0001-01-01T00:00:00Z"}`,
	`{"propertyId":"{prop}","source":"room","amountCents":100,"paymentMode":"cash","occurredAt":"9999-12-31T23:59:59Z"}`,
	`{"propertyId":"{prop}","source":"room","amountCents":100,"paymentMode":"cash","occurredAt":"2026-02-30T00:00:00Z"}`,
	`{"propertyId":"{prop}","date":"2026-13-01","countedClosingCents":-1}`,
	`{"propertyId":"not-a-uuid","date":"x","countedClosingCents":1000000000000001}`,
	`{"propertyIds":null}`,
	`{"propertyIds":["{prop}","{prop}"]}`,
	`{"propertyIds":[1,2,3]}`,
	`{"role":"SUPERUSER","email":"a@b","password":"x"}`,
	`{"name":"` + strings.Repeat("n", 5000) + `","type":"hotel"}`,
	`{"name":"\u0000\ud800","type":"hotel","timezone":"../../etc/passwd"}`,
	`{"email":"x@y.z","password":"` + strings.Repeat("p", 100) + `"}`,
	`{"a":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 201),
	`{"amountCents":100,"amountCents":200}`,
	`{"unknownField":true}`,
	`{"managerUserId":"{mgr}","date":"2026-1-2"}`,
	`{"notes":` + `"` + strings.Repeat("é", 3000) + `"}`,
	`{"propertyId":"{prop}"` + strings.Repeat(" ", 100),
}

// FuzzWriteBodies sends any body to every route that takes one.
func FuzzWriteBodies(f *testing.F) {
	x := newFuzzTarget(f)
	for i := range bodyRoutes {
		for _, s := range bodySeeds {
			f.Add(uint8(i), []byte(x.path(s)))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := bodyRoutes[int(route)%len(bodyRoutes)]
		token := x.admin
		if r.manager {
			token = x.manager
		}
		if strings.HasPrefix(r.path, "/v1/auth/") {
			token = ""
		}
		var headers []string
		if r.key != "" {
			headers = []string{"Idempotency-Key", r.key}
		}
		x.mu.Lock()
		defer x.mu.Unlock()
		before := x.fingerprint(t)
		res, err := x.send(r.method, x.path(r.path), token, body, headers...)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status >= 500 {
			t.Fatalf("%s %s with %q: %s", r.method, r.path, body, res)
		}
		if res.Status >= 400 {
			if after := x.fingerprint(t); after != before {
				t.Fatalf("%s %s with %q answered %d but wrote: %s", r.method, r.path, body, res.Status, res.Body)
			}
		}
	})
}

// queryRoutes are the routes that read query parameters.
var queryRoutes = []string{
	"/v1/finance/revenues",
	"/v1/finance/expenses",
	"/v1/finance/events",
	"/v1/properties",
	"/v1/reports/daily-report",
	"/v1/reports/daily-reports",
	"/v1/reports/monthly-report",
	"/v1/reports/yearly-summary",
	"/v1/finance/revenues/{rev}",
}

var querySeeds = []string{
	"propertyId={prop}&date=2026-01-02",
	"propertyId={prop}&startDate=2026-01-01&endDate=2026-12-31",
	"propertyId={prop}&startDate=2025-01-01&endDate=2026-12-31",
	"propertyId={prop}&year=2026&month=1&includePending=true",
	"year=2026",
	"year=-1&month=13",
	"year=99999999999999999999",
	"propertyId={prop}&status=pending&limit=500&cursor=abc",
	"limit=0", "limit=-1", "limit=1000000",
	"cursor=" + strings.Repeat("z", 300),
	"cursor=eyJhIjoxfQ",
	"entityType=revenue&entityId={rev}&limit=1000",
	"entityType=bogus&entityId=zz",
	"propertyId=%00&date=%ff",
	"propertyId={prop}&date=2026-02-30",
	"propertyId={prop}&date=2026-01-02&asOf=2026-01-03T00:00:00Z",
	"propertyId={prop}&date=2026-01-02&asOf=yesterday",
	"startDate=2026-12-31&endDate=2026-01-01&propertyId={prop}",
	"includePending=maybe",
	"propertyId={prop}&propertyId={prop}",
	"",
}

var tokenSeeds = []string{"", "c1.1", "c1.0", "c1.-1", "c1.18446744073709551615", "c1.99999999999999999999", "c2.5", "garbage", strings.Repeat("9", 70)}

// FuzzQueries sends any query string and consistency token to every route
// that reads them.
func FuzzQueries(f *testing.F) {
	x := newFuzzTarget(f)
	for i := range queryRoutes {
		for j, s := range querySeeds {
			f.Add(uint8(i), x.path(s), tokenSeeds[j%len(tokenSeeds)], j%2 == 0)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, query, consistency string, manager bool) {
		path := x.path(queryRoutes[int(route)%len(queryRoutes)])
		if _, err := url.ParseQuery(query); err == nil || strings.ContainsAny(query, " #\x00\r\n") {
			// Any query the client can put on the wire: escape what
			// would otherwise not be one.
			if strings.ContainsAny(query, " #\x00\r\n") {
				query = url.PathEscape(query)
			}
		}
		token := x.admin
		if manager {
			token = x.manager
		}
		var headers []string
		if consistency != "" && !strings.ContainsAny(consistency, "\x00\r\n") && len(consistency) < 4096 {
			headers = []string{"X-Consistency-Token", consistency}
		}
		res, err := x.send("GET", path+"?"+query, token, nil, headers...)
		if err != nil {
			if strings.Contains(err.Error(), "invalid") {
				return // the client library refuses it before the wire
			}
			t.Fatal(err)
		}
		// A well-formed token the pipeline will never reach waits out the
		// consistency timeout and answers 503: that is the contract.
		if res.Status >= 500 && !(res.Status == 503 && len(headers) > 0) {
			t.Fatalf("GET %s?%s (token %q): %s", path, query, consistency, res)
		}
	})
}
