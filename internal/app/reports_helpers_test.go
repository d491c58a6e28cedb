package app_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/postgres"
)

// The report tests share these helpers; their names start with "rep" so
// that they never collide with the other end-to-end tests of the package.

// repNow is the frozen clock of every report fixture: noon UTC on
// 2026-06-15, a Monday, so that the months before it are in the past in
// every time zone and a MANAGER's pending rows never trip the daily
// approval gate (they are all created "today").
var repNow = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

// repFixture is one running HMP with an organization whose ADMIN token is
// admin. last is the newest consistency token a write answered: reads
// present it so that they reflect every write made so far.
type repFixture struct {
	t     testing.TB
	env   *apptest.Env
	clock *apptest.Clock
	org   apptest.Org
	admin string
	last  string
}

// repPool keeps the many apps of a parallel run within the test cluster's
// connection limit.
func repPool(c *config.Config) { c.Pool = postgres.PoolConfig{MaxConns: 20, MinConns: 1} }

// repStart starts HMP with the frozen clock and signs up an organization.
func repStart(t testing.TB, name string, opts ...func(*config.Config)) *repFixture {
	t.Helper()
	clock := &apptest.Clock{}
	clock.Set(repNow)
	env := apptest.Start(t, cluster, append([]func(*config.Config){apptest.WithClock(clock), repPool}, opts...)...)
	org := env.Signup(name)
	return &repFixture{t: t, env: env, clock: clock, org: org, admin: org.AdminToken}
}

// in returns a copy of f that reports failures to t (a subtest).
func (f *repFixture) in(t testing.TB) *repFixture {
	e := *f.env
	e.T = t
	c := *f
	c.t, c.env = t, &e
	return &c
}

// property creates a property in zone tz and returns its id.
func (f *repFixture) property(name, tz string) string {
	f.t.Helper()
	return f.env.Property(f.admin, name, tz)
}

// write sends a write, fails the test unless it answers want, and keeps
// its consistency token.
func (f *repFixture) write(want int, method, path, token string, body any) *apptest.Response {
	f.t.Helper()
	r := f.env.Must(want, method, path, token, body)
	tok := r.Header.Get("X-Consistency-Token")
	if tok == "" {
		f.t.Fatalf("%s %s answered %s without an X-Consistency-Token", method, path, r)
	}
	f.last = tok
	return r
}

// create posts a revenue or an expense and returns it.
func (f *repFixture) create(token, kind, prop string, amount int64, mode, at string) apptest.Row {
	f.t.Helper()
	body := apptest.Txn{PropertyID: prop, AmountCents: amount, PaymentMode: mode, OccurredAt: at}
	if kind == "revenue" {
		body.Source = "room"
	} else {
		body.Category = "supplies"
	}
	var row apptest.Row
	f.write(201, "POST", "/v1/finance/"+kind+"s", token, body).JSON(f.t, &row)
	return row
}

// patch edits a row and returns it.
func (f *repFixture) patch(token, kind, id string, body map[string]any) apptest.Row {
	f.t.Helper()
	var row apptest.Row
	f.write(200, "PATCH", "/v1/finance/"+kind+"s/"+id, token, body).JSON(f.t, &row)
	return row
}

// review approves or rejects a pending row as the ADMIN.
func (f *repFixture) review(kind, id, verb string) apptest.Row {
	f.t.Helper()
	var row apptest.Row
	f.write(200, "POST", "/v1/finance/"+kind+"s/"+id+"/"+verb, f.admin, map[string]any{}).JSON(f.t, &row)
	return row
}

// get sends a read with the newest consistency token and decodes a 200.
func (f *repFixture) get(path, token string, v any) {
	f.t.Helper()
	r := f.env.Do("GET", path, token, nil, "X-Consistency-Token", f.last)
	if r.Status != 200 {
		f.t.Fatalf("GET %s: got %s, want 200", path, r)
	}
	r.JSON(f.t, v)
}

// drain waits until the projection reflects every write so far: a read
// with the newest consistency token.
func (f *repFixture) drain() {
	f.t.Helper()
	var y repYear
	f.get(repQuery("/v1/reports/yearly-summary", "year", "2026"), f.admin, &y)
}

// daily reads one day of a property's cash book.
func (f *repFixture) daily(token, prop, date string, includePending bool) repDay {
	f.t.Helper()
	var d repDay
	f.get(repQuery("/v1/reports/daily-report", "propertyId", prop, "date", date, "includePending", repBool(includePending)), token, &d)
	return d
}

// dailies reads a range of a property's cash book.
func (f *repFixture) dailies(token, prop, start, end string, includePending bool) repRange {
	f.t.Helper()
	var r repRange
	f.get(repQuery("/v1/reports/daily-reports", "propertyId", prop, "startDate", start, "endDate", end, "includePending", repBool(includePending)), token, &r)
	return r
}

// monthly reads a monthly report; prop "" sums the caller's properties.
func (f *repFixture) monthly(token, prop string, year, month int, includePending bool) repMonth {
	f.t.Helper()
	var m repMonth
	f.get(repQuery("/v1/reports/monthly-report", "propertyId", prop, "year", fmt.Sprint(year), "month", fmt.Sprint(month),
		"includePending", repBool(includePending)), token, &m)
	return m
}

// yearly reads a yearly summary; prop "" sums the caller's properties.
func (f *repFixture) yearly(token, prop string, year int) repYear {
	f.t.Helper()
	var y repYear
	f.get(repQuery("/v1/reports/yearly-summary", "propertyId", prop, "year", fmt.Sprint(year)), token, &y)
	return y
}

// closings reads the closing balances of a range, in order.
func (f *repFixture) closings(token, prop, start, end string) []int64 {
	f.t.Helper()
	r := f.dailies(token, prop, start, end, false)
	out := make([]int64, len(r.Reports))
	for i, d := range r.Reports {
		out[i] = d.ClosingBalanceCents
	}
	return out
}

// repQuery builds path?name=value&..., leaving out empty values.
func repQuery(path string, pairs ...string) string {
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

func repBool(b bool) string {
	if b {
		return "true"
	}
	return ""
}

// repDay is a daily report as the API answers it.
type repDay struct {
	PropertyID                 string `json:"propertyId"`
	Date                       string `json:"date"`
	OpeningBalanceCents        int64  `json:"openingBalanceCents"`
	CashReceivedCents          int64  `json:"cashReceivedCents"`
	BankReceivedCents          int64  `json:"bankReceivedCents"`
	TotalReceivedCents         int64  `json:"totalReceivedCents"`
	CashExpensesCents          int64  `json:"cashExpensesCents"`
	BankExpensesCents          int64  `json:"bankExpensesCents"`
	TotalExpensesCents         int64  `json:"totalExpensesCents"`
	ClosingBalanceCents        int64  `json:"closingBalanceCents"`
	NextDayOpeningBalanceCents int64  `json:"nextDayOpeningBalanceCents"`
	NetCashFlowCents           int64  `json:"netCashFlowCents"`
	TransactionCount           int64  `json:"transactionCount"`
	CountedClosingCents        *int64 `json:"countedClosingCents"`
	DiscrepancyCents           *int64 `json:"discrepancyCents"`
}

// String prints the figures of a day compactly, for failure messages.
func (d repDay) String() string {
	s := fmt.Sprintf("%s open %d in %d+%d=%d out %d+%d=%d close %d next %d net %d n %d", d.Date, d.OpeningBalanceCents,
		d.CashReceivedCents, d.BankReceivedCents, d.TotalReceivedCents, d.CashExpensesCents, d.BankExpensesCents,
		d.TotalExpensesCents, d.ClosingBalanceCents, d.NextDayOpeningBalanceCents, d.NetCashFlowCents, d.TransactionCount)
	if d.CountedClosingCents != nil {
		s += fmt.Sprintf(" counted %d", *d.CountedClosingCents)
	}
	if d.DiscrepancyCents != nil {
		s += fmt.Sprintf(" discrepancy %d", *d.DiscrepancyCents)
	}
	return s
}

// repSummary is the summary of a daily-reports range.
type repSummary struct {
	OpeningBalanceCents int64 `json:"openingBalanceCents"`
	ClosingBalanceCents int64 `json:"closingBalanceCents"`
	CashReceivedCents   int64 `json:"cashReceivedCents"`
	BankReceivedCents   int64 `json:"bankReceivedCents"`
	TotalReceivedCents  int64 `json:"totalReceivedCents"`
	CashExpensesCents   int64 `json:"cashExpensesCents"`
	BankExpensesCents   int64 `json:"bankExpensesCents"`
	TotalExpensesCents  int64 `json:"totalExpensesCents"`
	NetCashFlowCents    int64 `json:"netCashFlowCents"`
	TransactionCount    int64 `json:"transactionCount"`
}

// repRange is a daily-reports answer.
type repRange struct {
	Reports []repDay   `json:"reports"`
	Summary repSummary `json:"summary"`
}

// repMonth is a monthly report.
type repMonth struct {
	Year                   int      `json:"year"`
	Month                  int      `json:"month"`
	PropertyID             string   `json:"propertyId"`
	OpeningBalanceCents    int64    `json:"openingBalanceCents"`
	ClosingBalanceCents    int64    `json:"closingBalanceCents"`
	TotalCashReceivedCents int64    `json:"totalCashReceivedCents"`
	TotalBankReceivedCents int64    `json:"totalBankReceivedCents"`
	TotalCashExpensesCents int64    `json:"totalCashExpensesCents"`
	TotalBankExpensesCents int64    `json:"totalBankExpensesCents"`
	NetCashFlowCents       int64    `json:"netCashFlowCents"`
	ProfitMargin           float64  `json:"profitMargin"`
	TransactionCount       int64    `json:"transactionCount"`
	DailyReports           []repDay `json:"dailyReports"`
}

// repMonthSummary is one month of a yearly summary.
type repMonthSummary struct {
	Month               int   `json:"month"`
	OpeningBalanceCents int64 `json:"openingBalanceCents"`
	ClosingBalanceCents int64 `json:"closingBalanceCents"`
	TotalReceivedCents  int64 `json:"totalReceivedCents"`
	TotalExpensesCents  int64 `json:"totalExpensesCents"`
	NetCashFlowCents    int64 `json:"netCashFlowCents"`
	TransactionCount    int64 `json:"transactionCount"`
}

// repYear is a yearly summary.
type repYear struct {
	Year       int               `json:"year"`
	PropertyID string            `json:"propertyId"`
	Months     []repMonthSummary `json:"months"`
	Totals     struct {
		TotalReceivedCents int64   `json:"totalReceivedCents"`
		TotalExpensesCents int64   `json:"totalExpensesCents"`
		NetCashFlowCents   int64   `json:"netCashFlowCents"`
		ProfitMargin       float64 `json:"profitMargin"`
		TransactionCount   int64   `json:"transactionCount"`
	} `json:"totals"`
}

// repProblem is an RFC 9457 answer.
type repProblem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
	} `json:"errors"`
}

// repMustProblem asserts that r is a problem+json answer with status whose
// errors name every location in want, and returns it.
func repMustProblem(t testing.TB, r *apptest.Response, status int, want ...string) repProblem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.Body)
	}
	var p repProblem
	r.JSON(t, &p)
	if p.Status != status || p.Title == "" {
		t.Fatalf("problem = %+v, want status %d and a title", p, status)
	}
	locs := make([]string, len(p.Errors))
	for i, e := range p.Errors {
		locs[i] = e.Location
	}
	for _, w := range want {
		if !slices.Contains(locs, w) {
			t.Fatalf("errors[].location = %q, want %q among them; body %s", locs, w, r.Body)
		}
	}
	return p
}

// repDate is a calendar day as midnight UTC; the tests do their date
// arithmetic on it, independently of the product's date type.
type repDate = time.Time

func repParse(t testing.TB, s string) repDate {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatalf("date %q: %v", s, err)
	}
	return d
}

// repZone loads a time zone.
func repZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("zone %s: %v", name, err)
	}
	return loc
}

// repTime parses an RFC 3339 instant.
func repTime(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("instant %q: %v", s, err)
	}
	return at
}

// repFlows is what a property day adds up to.
type repFlows struct {
	cashIn, bankIn, cashOut, bankOut, count int64
}

// repRow is the expected state of one revenue or expense.
type repRow struct {
	kind   string // revenue or expense
	prop   string
	amount int64
	mode   string // cash or bank
	at     time.Time
	status string // approved, pending or rejected
}

// repLedger is the test's own account of every row and cash count, from
// which it computes the reports it expects.
type repLedger struct {
	zones  map[string]*time.Location // property id to its zone
	rows   map[string]*repRow        // row id to its state; deleted rows are gone
	counts map[string]int64          // property id + "/" + date to the counted cash
}

func newRepLedger() *repLedger {
	return &repLedger{zones: map[string]*time.Location{}, rows: map[string]*repRow{}, counts: map[string]int64{}}
}

// businessDate is the calendar date of at in the property's zone.
func (l *repLedger) businessDate(prop string, at time.Time) string {
	return at.In(l.zones[prop]).Format(time.DateOnly)
}

// flows sums the rows that count per property and business date.
func (l *repLedger) flows(includePending bool) map[string]map[string]repFlows {
	out := map[string]map[string]repFlows{}
	for _, r := range l.rows {
		if r.status != "approved" && (r.status != "pending" || !includePending) {
			continue
		}
		days := out[r.prop]
		if days == nil {
			days = map[string]repFlows{}
			out[r.prop] = days
		}
		d := l.businessDate(r.prop, r.at)
		f := days[d]
		switch {
		case r.kind == "revenue" && r.mode == "cash":
			f.cashIn += r.amount
		case r.kind == "revenue":
			f.bankIn += r.amount
		case r.mode == "cash":
			f.cashOut += r.amount
		default:
			f.bankOut += r.amount
		}
		f.count++
		days[d] = f
	}
	return out
}

// days computes the daily reports of props summed, from start to end. A
// counted closing shows only for a single property.
func (l *repLedger) days(props []string, start, end repDate, includePending bool) []repDay {
	flows := l.flows(includePending)
	var opening int64
	first := start.Format(time.DateOnly)
	for _, p := range props {
		for d, f := range flows[p] {
			if d < first {
				opening += f.cashIn - f.cashOut
			}
		}
	}
	var out []repDay
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		ds := d.Format(time.DateOnly)
		day := repDay{Date: ds, OpeningBalanceCents: opening}
		for _, p := range props {
			f := flows[p][ds]
			day.CashReceivedCents += f.cashIn
			day.BankReceivedCents += f.bankIn
			day.CashExpensesCents += f.cashOut
			day.BankExpensesCents += f.bankOut
			day.TransactionCount += f.count
		}
		day.TotalReceivedCents = day.CashReceivedCents + day.BankReceivedCents
		day.TotalExpensesCents = day.CashExpensesCents + day.BankExpensesCents
		day.NetCashFlowCents = day.TotalReceivedCents - day.TotalExpensesCents
		day.ClosingBalanceCents = opening + day.CashReceivedCents - day.CashExpensesCents
		day.NextDayOpeningBalanceCents = day.ClosingBalanceCents
		if len(props) == 1 {
			day.PropertyID = props[0]
			if c, ok := l.counts[props[0]+"/"+ds]; ok {
				day.CountedClosingCents = &c
				disc := c - day.ClosingBalanceCents
				day.DiscrepancyCents = &disc
			}
		}
		opening = day.ClosingBalanceCents
		out = append(out, day)
	}
	return out
}

// repSameDays compares served days with expected ones field by field and
// reports the first few differences.
func repSameDays(t testing.TB, what string, got, want []repDay) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d days, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		g, w := got[i], want[i]
		if w.PropertyID == "" {
			g.PropertyID = ""
		}
		if g.String() != w.String() || g.PropertyID != w.PropertyID {
			bad++
			if bad <= 5 {
				t.Errorf("%s day %d:\n got %s (property %q)\nwant %s (property %q)", what, i, g, g.PropertyID, w, w.PropertyID)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d days differ", what, bad, len(want))
	}
}

// repCheckMonth compares a served monthly report with the one computed
// from expected days.
func repCheckMonth(t testing.TB, what string, got repMonth, want []repDay) {
	t.Helper()
	repSameDays(t, what+" dailyReports", got.DailyReports, want)
	var cashIn, bankIn, cashOut, bankOut, n int64
	for _, d := range want {
		cashIn += d.CashReceivedCents
		bankIn += d.BankReceivedCents
		cashOut += d.CashExpensesCents
		bankOut += d.BankExpensesCents
		n += d.TransactionCount
	}
	net := cashIn + bankIn - cashOut - bankOut
	if got.OpeningBalanceCents != want[0].OpeningBalanceCents || got.ClosingBalanceCents != want[len(want)-1].ClosingBalanceCents ||
		got.TotalCashReceivedCents != cashIn || got.TotalBankReceivedCents != bankIn || got.TotalCashExpensesCents != cashOut ||
		got.TotalBankExpensesCents != bankOut || got.NetCashFlowCents != net || got.TransactionCount != n {
		t.Fatalf("%s = open %d close %d in %d/%d out %d/%d net %d n %d; want open %d close %d in %d/%d out %d/%d net %d n %d", what,
			got.OpeningBalanceCents, got.ClosingBalanceCents, got.TotalCashReceivedCents, got.TotalBankReceivedCents,
			got.TotalCashExpensesCents, got.TotalBankExpensesCents, got.NetCashFlowCents, got.TransactionCount,
			want[0].OpeningBalanceCents, want[len(want)-1].ClosingBalanceCents, cashIn, bankIn, cashOut, bankOut, net, n)
	}
}
