package app_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"hmp/internal/apptest"
)

// TestDailyReportFastReadAnswersAsTheRoute: the daily report's fast read
// (exactly propertyId and date, no token) answers what the huma route
// answers for the same read spelled otherwise (an explicit
// includePending=false takes the route): same status, body and headers;
// and what it cannot answer (another tenant's property, a MANAGER's
// unassigned one, a bad date, no token) still gets the route's answer.
func TestDailyReportFastReadAnswersAsTheRoute(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster)
	org := env.Signup("Fast Read")
	prop := env.Property(org.AdminToken, "Fast", "")
	other := env.Property(org.AdminToken, "Other", "")
	_, mgr := env.Manager(org.AdminToken, "mgr@fastread.test", prop)
	stranger := env.Signup("Stranger")
	created := env.Must(201, "POST", "/v1/finance/revenues", org.AdminToken, apptest.Txn{PropertyID: prop, Source: "room", AmountCents: 4_200, PaymentMode: "cash", OccurredAt: time.Now().UTC().Format(time.RFC3339)})
	var row apptest.Row
	created.JSON(t, &row)
	base := "/v1/reports/daily-report?propertyId=" + prop + "&date=" + row.BusinessDate
	env.Must(200, "GET", base, org.AdminToken, nil, "X-Consistency-Token", created.Header.Get("X-Consistency-Token"))

	same := func(what string, fast, route *apptest.Response) {
		t.Helper()
		if fast.Status != route.Status || !bytes.Equal(fast.Body, route.Body) {
			t.Errorf("%s: fast read %s, route %s", what, fast, route)
		}
		if f, r := headerNames(fast.Header), headerNames(route.Header); !slices.Equal(f, r) {
			t.Errorf("%s: fast read headers %v, route %v", what, f, r)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "Www-Authenticate"} {
			if fast.Header.Get(h) != route.Header.Get(h) {
				t.Errorf("%s: %s %q, route %q", what, h, fast.Header.Get(h), route.Header.Get(h))
			}
		}
	}
	for _, c := range []struct {
		what, query, token string
		status             int
	}{
		{"admin", base, org.AdminToken, 200},
		{"assigned manager", base, mgr, 200},
		{"unassigned manager", "/v1/reports/daily-report?propertyId=" + other + "&date=" + row.BusinessDate, mgr, 404},
		{"another tenant", base, stranger.AdminToken, 404},
		{"date out of range", "/v1/reports/daily-report?propertyId=" + prop + "&date=1999-01-01", org.AdminToken, 422},
		{"not a date", "/v1/reports/daily-report?propertyId=" + prop + "&date=2026-02-30", org.AdminToken, 422},
		{"no token", base, "", 401},
		{"bad token", base, "nope", 401},
	} {
		fast := env.Do("GET", c.query, c.token, nil)
		route := env.Do("GET", c.query+"&includePending=false", c.token, nil)
		if fast.Status != c.status {
			t.Errorf("%s: %s, want %d", c.what, fast, c.status)
		}
		same(c.what, fast, route)
	}
	// Reordered and upper-case spellings take the route, and answer alike.
	upper := "/v1/reports/daily-report?date=" + row.BusinessDate + "&propertyId=" + strings.ToUpper(prop)
	same("reordered, upper-case id", env.Do("GET", upper, org.AdminToken, nil), env.Do("GET", base, org.AdminToken, nil))
}

// headerNames lists a response's header names but the ones that differ
// per answer.
func headerNames(h http.Header) []string {
	var out []string
	for k := range h {
		if k != "Date" && k != "X-Request-Id" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
