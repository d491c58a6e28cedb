package httpapi

import (
	"context"
	"time"

	"hmp/internal/domain"
	"hmp/internal/reports"
)

// dailyReportAsOf answers a daily report with asOf: the figures as they
// were known at that moment, from the event store (no cache, no
// consistency wait: the past does not change).
func (s *server) dailyReportAsOf(ctx context.Context, pid domain.ID, d domain.Date, in *dailyReportInput) (*dailyReportOutput, error) {
	h := s.help
	asOf, err := time.Parse(time.RFC3339Nano, in.AsOf)
	if err != nil {
		return nil, domain.Invalid("query.asOf", "must be an RFC 3339 timestamp", in.AsOf)
	}
	r, err := s.Reports.DailyReportAsOf(ctx, h.Actor(ctx), pid, d, asOf, in.IncludePending)
	if err != nil {
		return nil, err
	}
	body, err := encodeDaily(pid, r)
	if err != nil {
		return nil, err
	}
	return s.rawJSON(body), nil
}

// dailyReportsRange answers the days of a daily-reports request: as of
// asOf when given (from the event store), else live.
func (s *server) dailyReportsRange(ctx context.Context, pid domain.ID, start, end domain.Date, in *dailyReportsInput) ([]reports.DailyReport, error) {
	if in.AsOf != "" {
		asOf, err := time.Parse(time.RFC3339Nano, in.AsOf)
		if err != nil {
			return nil, domain.Invalid("query.asOf", "must be an RFC 3339 timestamp", in.AsOf)
		}
		return s.Reports.DailyReportsAsOf(ctx, s.help.Actor(ctx), pid, start, end, asOf, in.IncludePending)
	}
	read, err := readOptions(in.ConsistencyToken, in.IncludePending)
	if err != nil {
		return nil, err
	}
	return s.Reports.DailyReports(ctx, s.help.Actor(ctx), pid, start, end, read)
}

// monthlyReport answers a monthly-report request: as of asOf when given
// (from the event store), else live.
func (s *server) monthlyReport(ctx context.Context, pid *domain.ID, in *monthlyReportInput) (reports.MonthlyReport, error) {
	if in.AsOf != "" {
		asOf, err := time.Parse(time.RFC3339Nano, in.AsOf)
		if err != nil {
			return reports.MonthlyReport{}, domain.Invalid("query.asOf", "must be an RFC 3339 timestamp", in.AsOf)
		}
		return s.Reports.MonthlyReportAsOf(ctx, s.help.Actor(ctx), pid, in.Year, time.Month(in.Month), asOf, in.IncludePending)
	}
	read, err := readOptions(in.ConsistencyToken, in.IncludePending)
	if err != nil {
		return reports.MonthlyReport{}, err
	}
	return s.Reports.MonthlyReport(ctx, s.help.Actor(ctx), pid, in.Year, time.Month(in.Month), read)
}
