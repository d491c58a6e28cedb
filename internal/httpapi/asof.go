package httpapi

import (
	"context"
	"time"

	"hmp/internal/domain"
)

// dailyReportAsOf answers a daily report with asOf: the figures as they
// were known at that moment, from the event store (no cache, no
// consistency wait: the past does not change).
func (s *server) dailyReportAsOf(ctx context.Context, pid domain.ID, d domain.Date, in *dailyReportInput) (*dailyReportOutput, error) {
	h := s.help
	asOf, err := time.Parse(time.RFC3339Nano, in.AsOf)
	if err != nil {
		return nil, h.Problem(ctx, domain.Invalid("query.asOf", "must be an RFC 3339 timestamp", in.AsOf))
	}
	r, err := s.Reports.DailyReportAsOf(ctx, h.Actor(ctx), pid, d, asOf, in.IncludePending)
	if err != nil {
		return nil, h.Problem(ctx, err)
	}
	return &dailyReportOutput{Body: toDailyBody(&pid, r)}, nil
}
