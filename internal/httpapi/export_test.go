package httpapi

import (
	"context"
	"log/slog"
)

// ProblemOf maps err as every handler does (Helpers.Problem).
func ProblemOf(err error) error {
	return (&Helpers{logger: slog.New(slog.DiscardHandler)}).Problem(context.Background(), err)
}
