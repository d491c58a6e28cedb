package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/advisor"
)

type adviceInput struct {
	Top int `query:"top" minimum:"1" maximum:"200" default:"20" doc:"statements taken from pg_stat_statements, by total and by mean time each"`
}

type adviceOutput struct {
	Body *advisor.Report
}

// registerAdvice serves the index advisor to operators. Its statements'
// texts are the server's own SQL; arguments never leave the process.
func (s *server) registerAdvice(api huma.API) {
	if s.IndexAdvice == nil {
		return
	}
	register(api, s.help, AdminSecured(huma.Operation{
		OperationID: "index-advice", Method: http.MethodGet, Path: "/v1/admin/index-advice",
		Summary:     "Indexes the slowest statements need, each proven by a hypothetical index",
		Description: "Explains the top statements of pg_stat_statements and the slow statements the query tracer kept (with their arguments), derives candidate indexes from their filters and sorts, and lists those whose hypothetical index (hypopg) lowers the statement's estimated cost, best first. 503 when the database has no hypopg.",
		Errors:      []int{401, 422, 503},
	}), func(ctx context.Context, in *adviceInput) (*adviceOutput, error) {
		rep, err := s.IndexAdvice(ctx, in.Top)
		if errors.Is(err, advisor.ErrNoHypoPG) {
			// The sentinel's own sentence (how to install hypopg), not the
			// text of whatever wraps it.
			return nil, huma.Error503ServiceUnavailable(advisor.ErrNoHypoPG.Error())
		}
		if err != nil {
			return nil, err
		}
		return &adviceOutput{Body: rep}, nil
	})
}
