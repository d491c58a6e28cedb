package httpapi_test

import (
	"strings"
	"testing"
)

// Review notes are limited in characters, not bytes: 300 emoji (1,200
// bytes) pass the 1,000-character limit, 1,001 characters do not.
func TestHostileNotesCountCharacters(t *testing.T) {
	t.Parallel()
	a := setup(t)
	o := a.org("Emoji Notes")
	mgr := a.login(o.managerEmail, managerPassword)
	pending := func() string {
		var row struct{ ID, Status string }
		a.must(201, "POST", "/v1/finance/revenues", mgr, revenue(o.propertyID), &row)
		if row.Status != "pending" {
			t.Fatalf("a MANAGER's row is %s", row.Status)
		}
		return row.ID
	}
	var row struct{ Status string }
	a.must(200, "POST", "/v1/finance/revenues/"+pending()+"/approve", o.adminToken,
		map[string]any{"notes": strings.Repeat("😀", 300)}, &row)
	if row.Status != "approved" {
		t.Fatalf("status %s after approving", row.Status)
	}
	res := a.do("POST", "/v1/finance/revenues/"+pending()+"/reject", o.adminToken,
		map[string]any{"notes": strings.Repeat("é", 1001)})
	if p := res.problem(t); res.Status != 422 || len(p.Errors) != 1 || p.Errors[0].Location != "body.notes" {
		t.Fatalf("1,001 characters: %d %s", res.Status, res.Body)
	}
}
