package httpapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

type requestIDKey struct{}

// RequestID returns the id requestLog gave the request of ctx ("" outside
// one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// sqlStater is what the driver's server errors answer (pgconn.PgError),
// declared here so that the edge classifies them without importing the
// driver.
type sqlStater interface{ SQLState() string }

// dependencyDown reports whether err comes from a dependency that is
// down, restarting or unreachable rather than from the request itself:
// a lost or refused connection, a server shutting down or starting up,
// too many connections, a statement timeout. Such a request may well
// succeed when retried, so it answers 503 with Retry-After, never 500.
// (postgres.Translate already marks the connection errors it sees as
// domain.ErrUnavailable; this catches the ones that reach the edge raw,
// such as a connection lost mid-query inside a transaction.)
func dependencyDown(err error) bool {
	var st sqlStater
	if errors.As(err, &st) {
		code := st.SQLState()
		switch {
		case strings.HasPrefix(code, "08"), // connection exception
			strings.HasPrefix(code, "57P"),   // admin/crash shutdown, cannot connect now
			strings.HasPrefix(code, "53"),    // insufficient resources (disk, memory, connections)
			strings.HasPrefix(code, "58"),    // system error (I/O)
			code == "57014",                  // statement timeout / query canceled
			code == "25006",                  // read-only transaction (failover)
			code == "40001", code == "40P01": // serialization failure, deadlock after retries
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	// pgx reports a connection it has already closed by text only.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "conn busy") ||
		strings.Contains(msg, "closed pool")
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
