package httpapi_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// reportNow is where TestReportsBadInput freezes the clock: noon UTC on
// 2026-06-15, so that a date may lie up to 2027-06-15.
var reportNow = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

// reportQuery builds path?name=value&..., leaving out empty values.
func reportQuery(path string, pairs ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			q.Set(pairs[i], pairs[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// reportDay is the part of a daily report these tests read.
type reportDay struct {
	Date                string `json:"date"`
	ClosingBalanceCents int64  `json:"closingBalanceCents"`
}

// TestReportsBadInput: bad input on the report endpoints is answered with
// a problem+json 4xx naming the offending parameter, never with a 500 or
// with data, before any report is read; the dates at the edges of the
// accepted range are accepted. (That they carry the projected balances is
// internal/app's TestReportsAcceptedDateEdges: the fixture runs no
// projector.)
func TestReportsBadInput(t *testing.T) {
	t.Parallel()
	a := setup(t)
	a.clock.Set(reportNow)
	o := a.org("Bad Report Input")
	utc := func(name string) string {
		var p struct{ ID string }
		a.must(201, "POST", "/v1/properties", o.adminToken, map[string]any{"name": name, "type": "hotel", "timezone": "UTC"}, &p)
		return p.ID
	}
	prop, other := utc("Strict"), utc("Unassigned")
	var m struct{ ID string }
	a.must(201, "POST", "/v1/users", o.adminToken, map[string]any{"email": "strict@bad.test", "password": managerPassword,
		"displayName": "Strict", "role": "MANAGER", "propertyIds": []string{prop}}, &m)
	mgr := a.login("strict@bad.test", managerPassword)
	foreign := a.org("Foreign Org").propertyID
	const unknown = "019ecb27-0000-7000-8000-000000000000"
	a.create(o.adminToken, "revenue", txn{PropertyID: prop, Source: "room", AmountCents: 100, PaymentMode: "cash", OccurredAt: "2026-05-01T10:00:00Z"})

	daily := func(kv ...string) string { return reportQuery("/v1/reports/daily-report", kv...) }
	dailies := func(kv ...string) string { return reportQuery("/v1/reports/daily-reports", kv...) }
	monthly := func(kv ...string) string { return reportQuery("/v1/reports/monthly-report", kv...) }
	yearly := func(kv ...string) string { return reportQuery("/v1/reports/yearly-summary", kv...) }
	cases := []struct {
		name     string
		token    string // "" is the ADMIN
		path     string
		status   int
		location string
	}{
		{"daily-report without propertyId", "", daily("date", "2026-05-01"), 422, "query.propertyId"},
		{"daily-report without date", "", daily("propertyId", prop), 422, "query.date"},
		{"daily-report on February 30", "", daily("propertyId", prop, "date", "2026-02-30"), 422, "query.date"},
		{"daily-report on day 32", "", daily("propertyId", prop, "date", "2026-01-32"), 422, "query.date"},
		{"daily-report on a date not in YYYY-MM-DD", "", daily("propertyId", prop, "date", "1/5/2026"), 422, "query.date"},
		{"daily-report before 2000", "", daily("propertyId", prop, "date", "1999-12-31"), 422, "query.date"},
		{"daily-report more than a year ahead", "", daily("propertyId", prop, "date", "2027-06-16"), 422, "query.date"},
		{"daily-report with a propertyId that is no UUID", "", daily("propertyId", "sea-view", "date", "2026-05-01"), 422, "query.propertyId"},
		{"daily-report of an unknown property", "", daily("propertyId", unknown, "date", "2026-05-01"), 404, "query.propertyId"},
		{"daily-report of another organization's property", "", daily("propertyId", foreign, "date", "2026-05-01"), 404, "query.propertyId"},
		{"daily-report of a property not assigned to the MANAGER", mgr, daily("propertyId", other, "date", "2026-05-01"), 404, "query.propertyId"},

		{"daily-reports without propertyId", "", dailies("startDate", "2026-05-01", "endDate", "2026-05-02"), 422, "query.propertyId"},
		{"daily-reports without startDate", "", dailies("propertyId", prop, "endDate", "2026-05-02"), 422, "query.startDate"},
		{"daily-reports without endDate", "", dailies("propertyId", prop, "startDate", "2026-05-01"), 422, "query.endDate"},
		{"daily-reports from February 30", "", dailies("propertyId", prop, "startDate", "2026-02-30", "endDate", "2026-03-02"), 422, "query.startDate"},
		{"daily-reports to month 13", "", dailies("propertyId", prop, "startDate", "2026-02-01", "endDate", "2026-13-01"), 422, "query.endDate"},
		{"daily-reports reversed", "", dailies("propertyId", prop, "startDate", "2026-05-02", "endDate", "2026-05-01"), 422, "query.endDate"},
		{"daily-reports over 367 days", "", dailies("propertyId", prop, "startDate", "2025-01-01", "endDate", "2026-01-02"), 422, "query.endDate"},
		{"daily-reports over 367 days across a leap day", "", dailies("propertyId", prop, "startDate", "2024-01-01", "endDate", "2025-01-01"), 422, "query.endDate"},
		{"daily-reports over ten years", "", dailies("propertyId", prop, "startDate", "2010-01-01", "endDate", "2020-01-01"), 422, "query.endDate"},
		{"daily-reports from before 2000", "", dailies("propertyId", prop, "startDate", "1999-12-31", "endDate", "2000-01-02"), 422, "query.startDate"},
		{"daily-reports of an unknown property", "", dailies("propertyId", unknown, "startDate", "2026-05-01", "endDate", "2026-05-02"), 404, "query.propertyId"},
		{"daily-reports of another organization's property", "", dailies("propertyId", foreign, "startDate", "2026-05-01", "endDate", "2026-05-02"), 404, "query.propertyId"},
		{"daily-reports of a property not assigned to the MANAGER", mgr, dailies("propertyId", other, "startDate", "2026-05-01", "endDate", "2026-05-02"), 404, "query.propertyId"},

		{"monthly-report of month 0", "", monthly("propertyId", prop, "year", "2026", "month", "0"), 422, "query.month"},
		{"monthly-report of month 13", "", monthly("propertyId", prop, "year", "2026", "month", "13"), 422, "query.month"},
		{"monthly-report of month -1", "", monthly("year", "2026", "month", "-1"), 422, "query.month"},
		{"monthly-report of month May", "", monthly("year", "2026", "month", "May"), 422, "query.month"},
		{"monthly-report without month", "", monthly("propertyId", prop, "year", "2026"), 422, "query.month"},
		{"monthly-report of year 1999", "", monthly("propertyId", prop, "year", "1999", "month", "5"), 422, "query.year"},
		{"monthly-report of year 2028", "", monthly("year", "2028", "month", "1"), 422, "query.year"},
		{"monthly-report of year 99999999999", "", monthly("year", "99999999999", "month", "1"), 422, "query.year"},
		{"monthly-report without year", "", monthly("propertyId", prop, "month", "5"), 422, "query.year"},
		{"monthly-report with a propertyId that is no UUID", "", monthly("propertyId", "x", "year", "2026", "month", "5"), 422, "query.propertyId"},
		{"monthly-report of an unknown property", "", monthly("propertyId", unknown, "year", "2026", "month", "5"), 404, "query.propertyId"},
		{"monthly-report of another organization's property", "", monthly("propertyId", foreign, "year", "2026", "month", "5"), 404, "query.propertyId"},
		{"monthly-report of a property not assigned to the MANAGER", mgr, monthly("propertyId", other, "year", "2026", "month", "5"), 404, "query.propertyId"},
		{"monthly-report with includePending not a boolean", "", monthly("propertyId", prop, "year", "2026", "month", "5", "includePending", "maybe"), 422, "query.includePending"},

		{"yearly-summary of year 1999", "", yearly("propertyId", prop, "year", "1999"), 422, "query.year"},
		{"yearly-summary of year 2028", "", yearly("year", "2028"), 422, "query.year"},
		{"yearly-summary without year", "", yearly("propertyId", prop), 422, "query.year"},
		{"yearly-summary of an unknown property", "", yearly("propertyId", unknown, "year", "2026"), 404, "query.propertyId"},
		{"yearly-summary of another organization's property", "", yearly("propertyId", foreign, "year", "2026"), 404, "query.propertyId"},
		{"yearly-summary of a property not assigned to the MANAGER", mgr, yearly("propertyId", other, "year", "2026"), 404, "query.propertyId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := a.in(t)
			token := c.token
			if token == "" {
				token = o.adminToken
			}
			r := a.do("GET", c.path, token, nil)
			mustLocations(t, mustProblem(t, r, c.status), c.location)
			if strings.Contains(string(r.Body), `"openingBalanceCents"`) {
				t.Fatalf("a refused read carries report data: %s", r.Body)
			}
		})
	}

	t.Run("daily-reports over exactly 366 days", func(t *testing.T) {
		a := a.in(t)
		for _, span := range [][2]string{{"2025-01-01", "2026-01-01"}, {"2024-01-01", "2024-12-31"}} {
			var r struct{ Reports []reportDay }
			a.must(200, "GET", dailies("propertyId", prop, "startDate", span[0], "endDate", span[1]), o.adminToken, nil, &r)
			if len(r.Reports) != 366 || r.Reports[0].Date != span[0] || r.Reports[365].Date != span[1] {
				t.Fatalf("%v: %d reports from %s to %s", span, len(r.Reports), r.Reports[0].Date, r.Reports[len(r.Reports)-1].Date)
			}
		}
	})

	t.Run("the edges of the accepted dates are accepted", func(t *testing.T) {
		a := a.in(t)
		var d reportDay
		a.must(200, "GET", daily("propertyId", prop, "date", "2000-01-01"), o.adminToken, nil, &d)
		if d.Date != "2000-01-01" || d.ClosingBalanceCents != 0 {
			t.Fatalf("2000-01-01 = %+v", d)
		}
		a.must(200, "GET", daily("propertyId", prop, "date", "2027-06-15"), o.adminToken, nil, &d)
		if d.Date != "2027-06-15" {
			t.Fatalf("2027-06-15 = %+v", d)
		}
		var mo struct{ DailyReports []reportDay }
		a.must(200, "GET", monthly("year", "2027", "month", "12"), o.adminToken, nil, &mo)
		if len(mo.DailyReports) != 31 {
			t.Fatalf("December 2027 has %d days", len(mo.DailyReports))
		}
		var y struct {
			Totals struct{ TransactionCount int64 }
		}
		a.must(200, "GET", yearly("propertyId", prop, "year", "2000"), o.adminToken, nil, &y)
		if y.Totals.TransactionCount != 0 {
			t.Fatalf("2000 = %+v", y)
		}
	})

	t.Run("cash counts", func(t *testing.T) {
		a := a.in(t)
		body := func(kv ...any) map[string]any {
			b := map[string]any{"propertyId": prop, "date": "2026-05-01", "countedClosingCents": 100}
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(b, kv[i].(string))
				} else {
					b[kv[i].(string)] = kv[i+1]
				}
			}
			return b
		}
		before := a.state(o.adminToken)
		cases := []struct {
			name     string
			token    string
			body     any
			status   int
			location string
		}{
			{"negative count", "", body("countedClosingCents", -1), 422, "body.countedClosingCents"},
			{"count above 10^15", "", body("countedClosingCents", int64(1_000_000_000_000_001)), 422, "body.countedClosingCents"},
			{"fractional count", "", body("countedClosingCents", 10.5), 422, "body.countedClosingCents"},
			{"count as a string", "", body("countedClosingCents", "100"), 422, "body.countedClosingCents"},
			{"no count", "", body("countedClosingCents", nil), 422, "body.countedClosingCents"},
			{"no propertyId", "", body("propertyId", nil), 422, "body.propertyId"},
			{"propertyId that is no UUID", "", body("propertyId", "till"), 422, "body.propertyId"},
			{"no date", "", body("date", nil), 422, "body.date"},
			{"February 30", "", body("date", "2026-02-30"), 422, "body.date"},
			{"before 2000", "", body("date", "1999-12-31"), 422, "body.date"},
			{"more than a year ahead", "", body("date", "2027-06-16"), 422, "body.date"},
			{"an unknown field", "", body("counted", 5), 422, "body.counted"},
			{"an unknown property", "", body("propertyId", unknown), 404, "body.propertyId"},
			{"another organization's property", "", body("propertyId", foreign), 404, "body.propertyId"},
			{"a property not assigned to the MANAGER", mgr, body("propertyId", other), 404, "body.propertyId"},
		}
		for _, c := range cases {
			token := c.token
			if token == "" {
				token = o.adminToken
			}
			r := a.do("POST", "/v1/reports/cash-counts", token, c.body)
			if r.Status != c.status {
				t.Fatalf("%s: got %s, want %d", c.name, r, c.status)
			}
			mustLocations(t, mustProblem(t, r, c.status), c.location)
		}
		for _, raw := range []string{`{"propertyId":`, `[]`, `"count"`} {
			mustProblem(t, a.do("POST", "/v1/reports/cash-counts", o.adminToken, raw), 400)
		}
		// None of them counted anything: no cash count and no event was
		// written (what the projector would turn into a report's
		// countedClosingCents), while an accepted count writes one of each.
		if after := a.state(o.adminToken); !equalState(before, after) {
			t.Fatalf("refused counts wrote: %v", countDiff(before, after))
		}
		a.must(201, "POST", "/v1/reports/cash-counts", o.adminToken, body(), nil)
		if d := countDiff(before, a.state(o.adminToken)); !equalCounts(d, map[string]int64{"cash_counts": 1, "events": 1}) {
			t.Fatalf("an accepted count wrote %v, want one cash count and its event", d)
		}
	})
}
