package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/domain"
	"hmp/internal/reconcile"
)

type reconcileInput struct {
	Body *struct {
		PropertyID string `json:"propertyId,omitempty" format:"uuid" doc:"omit for the whole organization"`
	}
}

type reconcileJobInput struct {
	ID string `path:"id" format:"uuid"`
}

type mismatchBody struct {
	PropertyID string `json:"propertyId" format:"uuid"`
	Period     string `json:"period" doc:"a date or a month (YYYY-MM)"`
	Field      string `json:"field"`
	Expected   int64  `json:"expected"`
	Actual     int64  `json:"actual"`
}

type reconcileJobBody struct {
	ID            string         `json:"id" format:"uuid"`
	Status        string         `json:"status" enum:"running,done,failed"`
	PropertyID    *string        `json:"propertyId,omitempty" format:"uuid"`
	DaysChecked   int64          `json:"daysChecked"`
	MonthsChecked int64          `json:"monthsChecked"`
	CountsChecked int64          `json:"countsChecked"`
	MismatchCount int64          `json:"mismatchCount" doc:"every mismatch found; mismatches lists the first 1,000"`
	Mismatches    []mismatchBody `json:"mismatches"`
	Error         string         `json:"error,omitempty"`
	CreatedAt     time.Time      `json:"createdAt"`
	FinishedAt    *time.Time     `json:"finishedAt,omitempty"`
}

type reconcileJobOutput struct {
	Location string `header:"Location"`
	Body     reconcileJobBody
}

func jobBody(j reconcile.Job) reconcileJobBody {
	b := reconcileJobBody{ID: j.ID.String(), Status: string(j.Status), DaysChecked: j.Result.DaysChecked,
		MonthsChecked: j.Result.MonthsChecked, CountsChecked: j.Result.CountsChecked, MismatchCount: j.Result.Mismatches,
		Error: j.Error, CreatedAt: j.CreatedAt, FinishedAt: j.FinishedAt, Mismatches: make([]mismatchBody, len(j.Result.Details))}
	if j.PropertyID != nil {
		p := j.PropertyID.String()
		b.PropertyID = &p
	}
	for i, m := range j.Result.Details {
		b.Mismatches[i] = mismatchBody{PropertyID: m.PropertyID.String(), Period: m.Period, Field: m.Field, Expected: m.Expected, Actual: m.Actual}
	}
	return b
}

// registerReconciliation adds the reconciliation job routes: a POST that
// answers 202 at once with the job to poll, and its GET.
func (s *server) registerReconciliation(api huma.API) {
	if s.Reconciliation == nil && s.Forward == nil {
		return
	}
	h := s.help
	tags := []string{"reports"}
	register(api, s.help, Retryable(Secured(huma.Operation{
		OperationID: "reconcile", Method: http.MethodPost, Path: "/v1/reports/reconciliation", Tags: tags,
		DefaultStatus: http.StatusAccepted,
		Summary:       "Start recomputing the cash book from the transactions in the background (ADMIN); poll the job",
		Description:   "One reconciliation runs at a time per organization: while one runs, this answers that job.",
		Errors:        []int{400, 401, 403, 404, 422, 503},
	})), func(ctx context.Context, in *reconcileInput) (*reconcileJobOutput, error) {
		actor := h.Actor(ctx)
		if !actor.IsAdmin() {
			return nil, domain.ErrForbidden
		}
		var pid *domain.ID
		if in.Body != nil && in.Body.PropertyID != "" {
			id, err := parseID("body.propertyId", in.Body.PropertyID)
			if err != nil {
				return nil, err
			}
			if _, err := s.properties().Property(ctx, actor, id); err != nil {
				return nil, &domain.NotFoundError{Field: "body.propertyId", Value: id.String(), What: "property"}
			}
			pid = &id
		}
		job, err := s.Reconciliation.Submit(ctx, actor.OrgID, pid)
		if err != nil {
			return nil, err
		}
		return &reconcileJobOutput{Location: "/v1/reports/reconciliation/" + job.ID.String(), Body: jobBody(job)}, nil
	})

	register(api, s.help, Secured(huma.Operation{
		OperationID: "reconciliationJob", Method: http.MethodGet, Path: "/v1/reports/reconciliation/{id}", Tags: tags,
		Summary: "A reconciliation job: running, done with its mismatches, or failed (ADMIN)",
		Errors:  []int{400, 401, 403, 404, 422},
	}), func(ctx context.Context, in *reconcileJobInput) (*reconcileJobOutput, error) {
		actor := h.Actor(ctx)
		if !actor.IsAdmin() {
			return nil, domain.ErrForbidden
		}
		id, err := parseID("path.id", in.ID)
		if err != nil {
			return nil, err
		}
		job, err := s.Reconciliation.Get(ctx, actor.OrgID, id)
		if err != nil {
			return nil, err
		}
		return &reconcileJobOutput{Body: jobBody(job)}, nil
	})
}
