package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hmp/internal/domain"
)

// Translate maps driver errors to the domain error model at the storage
// edge, keeping the original for logs: no rows becomes ErrNotFound, a
// unique violation ErrConflict, a missing referenced row ErrNotFound, a
// dead connection ErrUnavailable. Other errors pass through.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%w: %w", domain.ErrConflict, err)
		case "23503":
			return fmt.Errorf("%w: %w", domain.ErrNotFound, err)
		case "57P01", "57P02", "57P03", "53300":
			return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
		}
		return err
	}
	if pgconn.SafeToRetry(err) || isConnectError(err) {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	return err
}

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// IsUniqueViolation reports whether err is a unique violation of the named
// constraint (any constraint when name is empty).
func IsUniqueViolation(err error, name string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (name == "" || pgErr.ConstraintName == name)
}
