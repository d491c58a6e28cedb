package domain

import (
	"errors"
	"fmt"
)

// ErrPreconditionFailed: the client's precondition (If-Match: the row
// version it last saw) does not hold; nothing was written (412).
var ErrPreconditionFailed = errors.New("precondition failed")

// PreconditionFailedf returns an ErrPreconditionFailed with a message.
func PreconditionFailedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPreconditionFailed, fmt.Sprintf(format, args...))
}
