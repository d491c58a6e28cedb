package domain

import (
	"fmt"
	"testing"
)

// TestDateStringFormatsLikeSprintf: the fmt-free formatting answers what
// %04d-%02d-%02d did, in range and out of it.
func TestDateStringFormatsLikeSprintf(t *testing.T) {
	for _, d := range []Date{{}, {2026, 12, 3}, {2000, 1, 1}, {999, 9, 9}, {9999, 12, 31}, {10000, 1, 1}, {-1, 1, 1}, {2026, 13, 32}, {2026, 100, 1}} {
		if got, want := d.String(), fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day); got != want {
			t.Errorf("%#v: %q, want %q", d, got, want)
		}
	}
	id := parseTestID(t, "01a23c08-2805-78d8-bfdd-78d467e5bea7")
	if got := string(id.Append([]byte("x"))); got != "x01a23c08-2805-78d8-bfdd-78d467e5bea7" {
		t.Errorf("ID.Append: %q", got)
	}
}

func parseTestID(t *testing.T, s string) ID {
	t.Helper()
	id, err := ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
