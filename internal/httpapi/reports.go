package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"hmp/internal/domain"
	"hmp/internal/reports"
)

type dailyReportBody struct {
	PropertyID                 string `json:"propertyId,omitempty" format:"uuid"`
	Date                       string `json:"date" format:"date"`
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
	CountedClosingCents        *int64 `json:"countedClosingCents,omitempty"`
	DiscrepancyCents           *int64 `json:"discrepancyCents,omitempty"`
}

func toDailyBody(propertyID *domain.ID, d reports.DailyReport) dailyReportBody {
	b := dailyReportBody{
		Date: d.Date.String(), OpeningBalanceCents: d.OpeningCents,
		CashReceivedCents: d.CashReceivedCents, BankReceivedCents: d.BankReceivedCents, TotalReceivedCents: d.TotalReceivedCents(),
		CashExpensesCents: d.CashExpensesCents, BankExpensesCents: d.BankExpensesCents, TotalExpensesCents: d.TotalExpensesCents(),
		ClosingBalanceCents: d.ClosingCents(), NextDayOpeningBalanceCents: d.ClosingCents(), NetCashFlowCents: d.NetCashFlowCents(),
		TransactionCount: d.TransactionCount, CountedClosingCents: d.CountedClosingCents, DiscrepancyCents: d.DiscrepancyCents(),
	}
	if propertyID != nil {
		b.PropertyID = propertyID.String()
	}
	return b
}

type dailyReportInput struct {
	ConsistencyToken string `header:"X-Consistency-Token" maxLength:"64" doc:"token from a write: the read reflects that write and every write before it, or answers 503"`
	PropertyID       string `query:"propertyId" required:"true" format:"uuid"`
	Date             string `query:"date" required:"true" format:"date"`
	IncludePending   bool   `query:"includePending" doc:"count pending rows too"`
	AsOf             string `query:"asOf" maxLength:"64" doc:"RFC 3339: the report as it was known at that moment, before any later change (read from the event store, never cached)"`
}

// dailyReportOutput writes a daily report's JSON, encoded once per cached
// report (see encodeDaily); its schema is dailyReportBody's, set on the
// operation (dailyReportResponses).
type dailyReportOutput struct {
	Body func(huma.Context)
}

// dailyReportResponses documents the daily report's answer as the body
// type it encodes, which huma cannot see through a writer function.
func dailyReportResponses(api huma.API) map[string]*huma.Response {
	schema := api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[dailyReportBody](), true, "DailyReportBody")
	return map[string]*huma.Response{"200": {Description: http.StatusText(http.StatusOK),
		Content: map[string]*huma.MediaType{"application/json": {Schema: schema}}}}
}

// encodeDaily renders a daily report of property pid as huma renders a
// body (jsonFormat: no HTML escaping, a final newline).
func encodeDaily(pid domain.ID, d reports.DailyReport) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(toDailyBody(&pid, d)); err != nil {
		return nil, fmt.Errorf("encode daily report: %w", err)
	}
	return b.Bytes(), nil
}

// rawJSON answers body, already encoded, as application/json.
func (s *server) rawJSON(body []byte) *dailyReportOutput {
	return &dailyReportOutput{Body: func(ctx huma.Context) {
		_, w := humago.Unwrap(ctx)
		w.Header()["Content-Type"] = s.jsonType
		_, _ = w.Write(body)
	}}
}

type dailyReportsInput struct {
	ConsistencyToken string `header:"X-Consistency-Token" maxLength:"64" doc:"token from a write: the read reflects that write and every write before it, or answers 503"`
	PropertyID       string `query:"propertyId" required:"true" format:"uuid"`
	StartDate        string `query:"startDate" required:"true" format:"date"`
	EndDate          string `query:"endDate" required:"true" format:"date" doc:"at most 366 days after startDate, both included"`
	IncludePending   bool   `query:"includePending"`
	AsOf             string `query:"asOf" maxLength:"64" doc:"RFC 3339: the reports as they were known at that moment, before any later change (read from the event store, never cached)"`
}

// RangeSummary is the totals of a range of days (a daily-reports range, a
// month of the yearly summary). Exported only so that huma, which
// flattens exported embedded structs alone, shows its fields in
// monthSummaryBody's schema.
type RangeSummary struct {
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

type dailyReportsOutput struct {
	Body struct {
		Reports []dailyReportBody `json:"reports"`
		Summary RangeSummary      `json:"summary"`
	}
}

type monthlyReportInput struct {
	ConsistencyToken string `header:"X-Consistency-Token" maxLength:"64" doc:"token from a write: the read reflects that write and every write before it, or answers 503"`
	PropertyID       string `query:"propertyId" format:"uuid" doc:"omit to sum every property the caller may see"`
	Year             int    `query:"year" required:"true" minimum:"2000" maximum:"2100"`
	Month            int    `query:"month" required:"true" minimum:"1" maximum:"12"`
	IncludePending   bool   `query:"includePending"`
	AsOf             string `query:"asOf" maxLength:"64" doc:"RFC 3339: the month as it was known at that moment, before any later change (read from the event store, never cached)"`
}

type monthlyReportOutput struct {
	Body struct {
		Year                   int               `json:"year"`
		Month                  int               `json:"month"`
		PropertyID             string            `json:"propertyId,omitempty" format:"uuid"`
		OpeningBalanceCents    int64             `json:"openingBalanceCents"`
		ClosingBalanceCents    int64             `json:"closingBalanceCents"`
		TotalCashReceivedCents int64             `json:"totalCashReceivedCents"`
		TotalBankReceivedCents int64             `json:"totalBankReceivedCents"`
		TotalCashExpensesCents int64             `json:"totalCashExpensesCents"`
		TotalBankExpensesCents int64             `json:"totalBankExpensesCents"`
		NetCashFlowCents       int64             `json:"netCashFlowCents"`
		ProfitMargin           float64           `json:"profitMargin" doc:"net cash flow / total received x 100, 2 decimals; 0 when nothing was received"`
		TransactionCount       int64             `json:"transactionCount"`
		DailyReports           []dailyReportBody `json:"dailyReports"`
	}
}

type yearlyInput struct {
	ConsistencyToken string `header:"X-Consistency-Token" maxLength:"64" doc:"token from a write: the read reflects that write and every write before it, or answers 503"`
	PropertyID       string `query:"propertyId" format:"uuid"`
	Year             int    `query:"year" required:"true" minimum:"2000" maximum:"2100"`
	IncludePending   bool   `query:"includePending"`
}

// monthSummaryBody is one month of a yearly summary: the month's totals,
// as a range summary gives them.
type monthSummaryBody struct {
	Month int `json:"month"`
	RangeSummary
}

type yearlyOutput struct {
	Body struct {
		Year       int                `json:"year"`
		PropertyID string             `json:"propertyId,omitempty" format:"uuid"`
		Months     []monthSummaryBody `json:"months"`
		Totals     struct {
			TotalReceivedCents int64   `json:"totalReceivedCents"`
			TotalExpensesCents int64   `json:"totalExpensesCents"`
			NetCashFlowCents   int64   `json:"netCashFlowCents"`
			ProfitMargin       float64 `json:"profitMargin"`
			TransactionCount   int64   `json:"transactionCount"`
		} `json:"totals"`
	}
}

// registerReports registers the report routes (one handler each, below);
// without a reports service or a gateway there are none.
func (s *server) registerReports(api huma.API) {
	if s.Reports == nil && s.Forward == nil {
		return
	}
	tags := []string{"reports"}
	register(api, s.help, Secured(huma.Operation{
		OperationID: "dailyReport", Method: http.MethodGet, Path: "/v1/reports/daily-report", Tags: tags,
		Summary: "A property's cash book for one day", Errors: []int{400, 401, 404, 422, 503},
		Responses: dailyReportResponses(api),
	}), s.dailyReport)
	register(api, s.help, Secured(huma.Operation{
		OperationID: "dailyReports", Method: http.MethodGet, Path: "/v1/reports/daily-reports", Tags: tags,
		Summary: "A property's cash book for every day of a range (at most 366 days)", Errors: []int{400, 401, 404, 422, 503},
	}), s.dailyReports)
	register(api, s.help, Secured(huma.Operation{
		OperationID: "monthlyReport", Method: http.MethodGet, Path: "/v1/reports/monthly-report", Tags: tags,
		Summary: "A month of one property's cash book, or summed per day over the caller's properties", Errors: []int{400, 401, 404, 422, 503},
	}), s.monthlyReportRoute)
	register(api, s.help, Secured(huma.Operation{
		OperationID: "yearlySummary", Method: http.MethodGet, Path: "/v1/reports/yearly-summary", Tags: tags,
		Summary: "The twelve months of a year", Errors: []int{400, 401, 404, 422, 503},
	}), s.yearlySummary)
}

// dailyReport answers GET /v1/reports/daily-report: from the cache,
// encoded once, or as of a past moment.
func (s *server) dailyReport(ctx context.Context, in *dailyReportInput) (*dailyReportOutput, error) {
	pid, err := parseID("query.propertyId", in.PropertyID)
	if err != nil {
		return nil, err
	}
	d, err := requiredDate("query.date", in.Date)
	if err != nil {
		return nil, err
	}
	if in.AsOf != "" {
		return s.dailyReportAsOf(ctx, pid, d, in)
	}
	read, err := readOptions(in.ConsistencyToken, in.IncludePending)
	if err != nil {
		return nil, err
	}
	body, err := s.Reports.DailyReportEncoded(ctx, s.help.Actor(ctx), pid, d, read, encodeDaily)
	if err != nil {
		return nil, err
	}
	return s.rawJSON(body), nil
}

// dailyReports answers GET /v1/reports/daily-reports: each day of the
// range and their summary.
func (s *server) dailyReports(ctx context.Context, in *dailyReportsInput) (*dailyReportsOutput, error) {
	pid, err := parseID("query.propertyId", in.PropertyID)
	if err != nil {
		return nil, err
	}
	start, err1 := requiredDate("query.startDate", in.StartDate)
	end, err2 := requiredDate("query.endDate", in.EndDate)
	if err := joinValidation(err1, err2); err != nil {
		return nil, err
	}
	days, err := s.dailyReportsRange(ctx, pid, start, end, in)
	if err != nil {
		return nil, err
	}
	out := &dailyReportsOutput{}
	out.Body.Reports = make([]dailyReportBody, len(days))
	sum := &out.Body.Summary
	for i, d := range days {
		out.Body.Reports[i] = toDailyBody(&pid, d)
		sum.CashReceivedCents += d.CashReceivedCents
		sum.BankReceivedCents += d.BankReceivedCents
		sum.CashExpensesCents += d.CashExpensesCents
		sum.BankExpensesCents += d.BankExpensesCents
		sum.TransactionCount += d.TransactionCount
	}
	sum.TotalReceivedCents = sum.CashReceivedCents + sum.BankReceivedCents
	sum.TotalExpensesCents = sum.CashExpensesCents + sum.BankExpensesCents
	sum.NetCashFlowCents = sum.TotalReceivedCents - sum.TotalExpensesCents
	sum.OpeningBalanceCents = days[0].OpeningCents
	sum.ClosingBalanceCents = days[len(days)-1].ClosingCents()
	return out, nil
}

// monthlyReportRoute answers GET /v1/reports/monthly-report (the report
// itself comes from monthlyReport).
func (s *server) monthlyReportRoute(ctx context.Context, in *monthlyReportInput) (*monthlyReportOutput, error) {
	pid, err := optionalID("query.propertyId", in.PropertyID)
	if err != nil {
		return nil, err
	}
	m, err := s.monthlyReport(ctx, pid, in)
	if err != nil {
		return nil, err
	}
	out := &monthlyReportOutput{}
	b := &out.Body
	b.Year, b.Month = m.Year, int(m.Month)
	if pid != nil {
		b.PropertyID = pid.String()
	}
	b.OpeningBalanceCents, b.ClosingBalanceCents = m.OpeningCents, m.ClosingCents
	b.TotalCashReceivedCents, b.TotalBankReceivedCents = m.CashReceivedCents, m.BankReceivedCents
	b.TotalCashExpensesCents, b.TotalBankExpensesCents = m.CashExpensesCents, m.BankExpensesCents
	b.NetCashFlowCents = m.NetCashFlowCents()
	b.ProfitMargin = reports.ProfitMargin(b.NetCashFlowCents, m.CashReceivedCents+m.BankReceivedCents)
	b.TransactionCount = m.TransactionCount
	b.DailyReports = make([]dailyReportBody, len(m.Days))
	for i, d := range m.Days {
		b.DailyReports[i] = toDailyBody(pid, d)
	}
	return out, nil
}

// yearlySummary answers GET /v1/reports/yearly-summary: each month and
// the year's totals.
func (s *server) yearlySummary(ctx context.Context, in *yearlyInput) (*yearlyOutput, error) {
	pid, err := optionalID("query.propertyId", in.PropertyID)
	if err != nil {
		return nil, err
	}
	read, err := readOptions(in.ConsistencyToken, in.IncludePending)
	if err != nil {
		return nil, err
	}
	months, err := s.Reports.YearlySummary(ctx, s.help.Actor(ctx), pid, in.Year, read)
	if err != nil {
		return nil, err
	}
	out := &yearlyOutput{}
	out.Body.Year = in.Year
	if pid != nil {
		out.Body.PropertyID = pid.String()
	}
	out.Body.Months = make([]monthSummaryBody, len(months))
	t := &out.Body.Totals
	for i, m := range months {
		out.Body.Months[i] = monthSummaryBody{Month: int(m.Month), RangeSummary: RangeSummary{
			OpeningBalanceCents: m.OpeningCents, ClosingBalanceCents: m.ClosingCents,
			CashReceivedCents: m.CashReceivedCents, BankReceivedCents: m.BankReceivedCents, TotalReceivedCents: m.TotalReceivedCents(),
			CashExpensesCents: m.CashExpensesCents, BankExpensesCents: m.BankExpensesCents, TotalExpensesCents: m.TotalExpensesCents(),
			NetCashFlowCents: m.TotalReceivedCents() - m.TotalExpensesCents(), TransactionCount: m.TransactionCount,
		}}
		t.TotalReceivedCents += m.TotalReceivedCents()
		t.TotalExpensesCents += m.TotalExpensesCents()
		t.TransactionCount += m.TransactionCount
	}
	t.NetCashFlowCents = t.TotalReceivedCents - t.TotalExpensesCents
	t.ProfitMargin = reports.ProfitMargin(t.NetCashFlowCents, t.TotalReceivedCents)
	return out, nil
}

// readOptions parses the qualifiers of a report read; the service waits
// for the token's writes once input and access are checked.
func readOptions(token string, includePending bool) (reports.Read, error) {
	r := reports.Read{IncludePending: includePending}
	if token == "" {
		return r, nil
	}
	t, err := domain.ParseToken(token)
	if err != nil {
		return r, domain.Invalid("header.X-Consistency-Token", "is not a token this API returned", token)
	}
	r.Token = &t
	return r, nil
}

func requiredDate(location, s string) (domain.Date, error) {
	d, err := domain.ParseDate(s)
	if err != nil {
		return domain.Date{}, domain.Invalid(location, "must be a date YYYY-MM-DD", s)
	}
	return d, nil
}

func optionalID(location, s string) (*domain.ID, error) {
	if s == "" {
		return nil, nil
	}
	id, err := parseID(location, s)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// joinValidation merges validation errors of several fields into one.
func joinValidation(errs ...error) error {
	v := &domain.ValidationError{}
	for _, err := range errs {
		if ve, ok := err.(*domain.ValidationError); ok {
			v.Fields = append(v.Fields, ve.Fields...)
		} else if err != nil {
			return err
		}
	}
	return v.Err()
}
