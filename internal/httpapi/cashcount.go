package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

type cashCountInput struct {
	Body struct {
		PropertyID          string `json:"propertyId" format:"uuid"`
		Date                string `json:"date" format:"date"`
		CountedClosingCents int64  `json:"countedClosingCents" minimum:"0" maximum:"1000000000000000"`
	}
}

type cashCountOutput struct {
	ConsistencyToken string `header:"X-Consistency-Token"`
	Body             struct {
		PropertyID          string    `json:"propertyId" format:"uuid"`
		Date                string    `json:"date" format:"date"`
		CountedClosingCents int64     `json:"countedClosingCents"`
		Version             int       `json:"version"`
		CountedBy           string    `json:"countedBy" format:"uuid"`
		CountedAt           time.Time `json:"countedAt"`
	}
}

// registerCashCounts serves the cash counts: writes, served by finance,
// which owns the table and appends the count's event in the same commit.
// They keep their place under /v1/reports (the report it corrects).
func (s *server) registerCashCounts(api huma.API) {
	if s.Finance == nil && s.Forward == nil {
		return
	}
	h := s.help
	register(api, h, Retryable(Secured(huma.Operation{
		OperationID: "recordCashCount", Method: http.MethodPost, Path: "/v1/reports/cash-counts", Tags: []string{"reports"},
		Summary:       "Record the physically counted cash at a day's end (a later count for the day replaces it)",
		DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 404, 413, 422},
	})), func(ctx context.Context, in *cashCountInput) (*cashCountOutput, error) {
		pid, err := parseID("body.propertyId", in.Body.PropertyID)
		if err != nil {
			return nil, err
		}
		d, err := requiredDate("body.date", in.Body.Date)
		if err != nil {
			return nil, err
		}
		c, w, err := s.Finance.RecordCashCount(ctx, h.Actor(ctx), pid, d, in.Body.CountedClosingCents)
		if err != nil {
			return nil, err
		}
		out := &cashCountOutput{ConsistencyToken: s.token(ctx, w.Token)}
		b := &out.Body
		b.PropertyID, b.Date, b.CountedClosingCents, b.Version = c.PropertyID.String(), c.Date.String(), c.CountedClosingCents, c.Version
		b.CountedBy, b.CountedAt = c.CountedBy.String(), c.CountedAt
		return out, nil
	})
}
