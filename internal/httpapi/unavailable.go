package httpapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/postgres"
)

// RequestID returns the id requestLog gave the request of ctx ("" outside
// one).
func RequestID(ctx context.Context) string {
	if st := stateOf(ctx); st != nil {
		return st.id
	}
	return ""
}

// sqlStater is what the driver's server errors answer (pgconn.PgError),
// declared here so that the edge recognises driver text without importing
// the driver.
type sqlStater interface{ SQLState() string }

// dependencyDown reports whether err comes from a dependency that is
// down, restarting, overloaded or in the way rather than from the request
// itself: such a request may well succeed when retried, so it answers 503
// with Retry-After, never 500. The classification is postgres.Transient's,
// the one list of PostgreSQL's transient errors (lost connections,
// shutdowns, lock and statement timeouts, serialization failures after
// retries...): postgres.Translate marks most of them domain.ErrUnavailable
// already, and this catches the ones that reach the edge raw.
func dependencyDown(err error) bool {
	return postgres.Transient(err)
}

// fromDriver reports whether err carries text of a driver or server error
// that must not reach a client.
func fromDriver(err error) bool {
	var st sqlStater
	var ne net.Error
	return errors.As(err, &st) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// joinsCause reports whether err wraps a sentinel together with a cause
// ("%w: %w", as postgres.Translate does): the cause's text is the
// driver's, so only the sentinel may be shown.
func joinsCause(err error) bool {
	for err != nil {
		if m, ok := err.(interface{ Unwrap() []error }); ok {
			errs := m.Unwrap()
			if len(errs) > 1 {
				return true
			}
			if len(errs) == 0 {
				return false
			}
			err = errs[0]
			continue
		}
		err = errors.Unwrap(err)
	}
	return false
}

// DependencyError is what a readiness check returns for a dependency that
// does not answer: /readyz names the dependency, and logs (never shows)
// the cause.
type DependencyError struct {
	// Name is the dependency: "database", "bus", "redis".
	Name string
	Err  error
}

func (e *DependencyError) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *DependencyError) Unwrap() error { return e.Err }

// notReady answers /readyz for a failed check: which dependency is down,
// without its error text (hosts, ports, driver messages).
func (s *server) notReady(ctx context.Context, err error) error {
	s.Logger.Warn("not_ready", "error", err.Error(), "request_id", RequestID(ctx))
	detail := "not ready"
	var de *DependencyError
	if errors.As(err, &de) {
		detail = "not ready: " + de.Name + " is unavailable"
	}
	return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable(detail), http.Header{"Retry-After": {"1"}})
}
