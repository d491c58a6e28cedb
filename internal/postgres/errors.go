package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"hmp/internal/domain"
)

// Translate maps driver errors to the domain error model at the storage
// edge, keeping the original for logs: no rows becomes ErrNotFound, a
// unique violation ErrConflict, a missing referenced row ErrNotFound, and
// every transient error (see Transient) ErrUnavailable. Other errors pass
// through.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	if errors.Is(err, domain.ErrUnavailable) {
		return err // translated already
	}
	if Transient(err) {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%w: %w", domain.ErrConflict, err)
		case "23503":
			return fmt.Errorf("%w: %w", domain.ErrNotFound, err)
		}
	}
	return err
}

// Transient reports whether err says the database is (for now) away,
// overloaded or in the way, rather than that the statement or its data is
// wrong: the same work, tried again later, can succeed. True for
//   - connection loss, before or in the middle of a query, refused or reset
//     connections, a deadline reached during I/O (context.DeadlineExceeded,
//     network timeouts);
//   - SQLSTATE class 08 (connection exception), 53 (insufficient resources:
//     disk full, out of memory, too many connections), 57P01/57P02/57P03
//     (administrator or crash shutdown, cannot connect now), 57P05 (idle
//     session timeout: the server closed the connection), 25006 (read-only
//     transaction: a primary turned standby during a failover), 57014
//     (statement timeout or cancel), 55P03 (lock timeout), 40001 and 40P01
//     (serialization failure, deadlock), 58000 and 58030 (system and I/O
//     errors outside PostgreSQL);
//   - a pool closed by a shutdown (another instance, or this one restarted,
//     can do the work);
//   - an error already translated to domain.ErrUnavailable.
//
// context.Canceled is not transient: the caller gave up. Who may call: any
// package; it is the one place that knows PostgreSQL's error classes, and
// the HTTP edge answers exactly these errors with 503 and Retry-After.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, domain.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientCode(pgErr.Code)
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, puddle.ErrClosedPool)
}

func transientCode(code string) bool {
	if len(code) != 5 {
		return false
	}
	switch code[:2] {
	case "08", "53":
		return true
	}
	switch code {
	case "57P01", "57P02", "57P03", "57P05", "25006", "57014", "55P03", "40001", "40P01", "58000", "58030":
		return true
	}
	return false
}

// Serialization reports whether err is a serialization failure or a
// deadlock: the transaction lost a race and can simply run again.
func Serialization(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// Overflow reports whether err is a numeric value out of range (SQLSTATE
// 22003): a sum left the column's type.
func Overflow(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "22003"
}

// IsUniqueViolation reports whether err is a unique violation of the named
// constraint (any constraint when name is empty).
func IsUniqueViolation(err error, name string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (name == "" || pgErr.ConstraintName == name)
}
