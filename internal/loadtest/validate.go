package loadtest

import (
	"fmt"
	"time"
)

// The Validate methods of the scenario configs check a resolved config:
// the values a command line states (there zero is a value, and a length
// or count of zero is a mistake), or a config after its defaults. Each
// problem names the setting as the command line's flag does.

type number interface {
	~int | ~uint64 | ~float64 | time.Duration
}

// positive adds a problem when v is not above zero.
func positive[T number](errs *[]error, name string, v T) {
	if v <= 0 {
		*errs = append(*errs, fmt.Errorf("--%s must be positive, got %v", name, v))
	}
}

// notNegative adds a problem when v is below zero.
func notNegative[T number](errs *[]error, name string, v T) {
	if v < 0 {
		*errs = append(*errs, fmt.Errorf("--%s must not be negative, got %v", name, v))
	}
}
