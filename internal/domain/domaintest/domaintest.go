// Package domaintest holds assertions on the errors of the domain model,
// for the tests of the services that return them.
package domaintest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"hmp/internal/domain"
)

// MustErr fails t unless err is target (errors.Is) and its text holds
// every one of parts.
func MustErr(t testing.TB, err, target error, parts ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not say %q", err, p)
		}
	}
}

// FieldName is a validation field without its transport location, so
// that a test holds whether the service or the edge adds "body." or
// "query.".
func FieldName(f string) string {
	_, name, ok := strings.Cut(f, ".")
	if !ok || (!strings.HasPrefix(f, "body.") && !strings.HasPrefix(f, "query.")) {
		return f
	}
	return name
}

// MustFields fails t unless err is a *domain.ValidationError naming
// exactly the fields want (without location prefixes, see FieldName), in
// any order.
func MustFields(t testing.TB, err error, want ...string) {
	t.Helper()
	var v *domain.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("error = %v, want a validation error naming %q", err, want)
	}
	var got []string
	for _, f := range v.Fields {
		got = append(got, FieldName(f.Field))
	}
	slices.Sort(got)
	got = slices.Compact(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("invalid fields = %q, want %q (%v)", got, want, err)
	}
}
