package advisor

import (
	"slices"
	"testing"
)

func TestPredicates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cond    string
		eq, rng []string
	}{
		{"((t.org_id = $1) AND (t.created_by = '0190'::uuid) AND (t.status = 'pending'::text))", []string{"org_id", "created_by", "status"}, nil},
		{"((org_id = $1) AND (($3 IS NULL) OR (property_id = $3)) AND (business_date >= '2026-01-01'::date))", []string{"org_id"}, []string{"business_date"}},
		{"(($2 = e.org_id) AND (e.tx_id < $4))", []string{"org_id"}, []string{"tx_id"}},
		{"((property_id = ANY ($5)) AND (lower(email) = 'a'::text))", []string{"property_id"}, nil},
		{"(description = 'a AND (b = c)'::text)", []string{"description"}, nil},
		{"((t.org_id = 'x'::uuid) AND ((t.kind)::text = 'revenue'::text))", []string{"org_id", "kind"}, nil},
	} {
		eq, rng := predicates(tc.cond)
		if !slices.Equal(eq, tc.eq) || !slices.Equal(rng, tc.rng) {
			t.Errorf("predicates(%q) = %v, %v; want %v, %v", tc.cond, eq, rng, tc.eq, tc.rng)
		}
	}
}

func TestTypedParam(t *testing.T) {
	t.Parallel()
	got := typedParam.ReplaceAllString("SELECT (m + interval $5)::date, DATE $6", "$$$2::$1")
	if want := "SELECT (m + $5::interval)::date, $6::DATE"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
