package domain

import (
	"errors"
	"fmt"
	"strings"
)

// The error model: services return these (wrapped with context); the HTTP
// edge maps them once to problem+json statuses.
var (
	// ErrNotFound: the resource does not exist, belongs to another tenant,
	// or is a property the calling manager is not assigned to (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request collides with the current state (409).
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the caller's role may never do this (403).
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthenticated: no or invalid credentials (401).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrUnavailable: a dependency is down or a bounded wait expired (503).
	ErrUnavailable = errors.New("unavailable")
)

// FieldError names one offending input field and why.
type FieldError struct {
	// Field is a location such as "body.amountCents" or "query.date".
	Field string
	// Reason is a sentence fragment, e.g. "must be greater than 0".
	Reason string
	// Value is the offending value, echoed back to the caller; nil for none.
	Value any
}

// ValidationError carries every invalid field of one request (422).
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + " " + f.Reason
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Add records one invalid field.
func (e *ValidationError) Add(field, reason string, value any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Reason: reason, Value: value})
}

// Err returns e when it holds any field, else nil.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Invalid is shorthand for a one-field ValidationError.
func Invalid(field, reason string, value any) error {
	return &ValidationError{Fields: []FieldError{{field, reason, value}}}
}

// Conflictf returns an ErrConflict with a message for the caller.
func Conflictf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConflict, fmt.Sprintf(format, args...))
}

// NotFoundf returns an ErrNotFound with a message for the caller.
func NotFoundf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotFound, fmt.Sprintf(format, args...))
}

// NotFoundError is an ErrNotFound about a resource named in the request,
// such as the propertyId of a body.
type NotFoundError struct {
	// Field is the location that named it, e.g. "body.propertyId".
	Field string
	// Value is the id as given.
	Value any
	// What names the resource, e.g. "property".
	What string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %v not found", e.What, e.Value) }

// Unwrap makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }
