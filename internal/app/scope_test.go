package app_test

import (
	"testing"
	"time"

	"hmp/internal/tenancy"
)

// TestUnassignedManagerLosesAccess: a MANAGER's assignments are cached
// for the access check of reads, but unassigning them from a property
// takes effect at once on the instance that made the change and, on
// another instance that had cached the assignment, by the time the bound
// (tenancy.DefaultScopeMaxStale, the session bound) has passed;
// reassigning restores access at once.
func TestUnassignedManagerLosesAccess(t *testing.T) {
	t.Parallel()
	a, b := twins(t)
	org := a.Signup("Scope Suites")
	north := a.Property(org.AdminToken, "North", "")
	south := a.Property(org.AdminToken, "South", "")
	mgrID, mgr := a.Manager(org.AdminToken, "mgr@scope.test", north, south)
	today := time.Now().UTC().Format(time.DateOnly)
	day := func(prop string) string { return "/v1/reports/daily-report?propertyId=" + prop + "&date=" + today }
	// Both instances read (and cache) the assignments.
	a.Must(200, "GET", day(north), mgr, nil)
	b.Must(200, "GET", day(north), mgr, nil)
	b.Must(200, "GET", day(south), mgr, nil)

	since := time.Now()
	a.Must(200, "PUT", "/v1/users/"+mgrID+"/properties", org.AdminToken, map[string]any{"propertyIds": []string{south}})
	a.Must(404, "GET", day(north), mgr, nil) // at once where the change was made
	a.Must(200, "GET", day(south), mgr, nil)

	// Elsewhere the cached assignment may answer until the bound, never
	// after it: the entry was read before the change.
	time.Sleep(time.Until(since.Add(tenancy.DefaultScopeMaxStale)))
	b.Must(404, "GET", day(north), mgr, nil)
	b.Must(200, "GET", day(south), mgr, nil)
	a.Must(404, "GET", "/v1/reports/daily-reports?propertyId="+north+"&startDate="+today+"&endDate="+today, mgr, nil)

	a.Must(200, "PUT", "/v1/users/"+mgrID+"/properties", org.AdminToken, map[string]any{"propertyIds": []string{north, south}})
	a.Must(200, "GET", day(north), mgr, nil) // the cached refusal is dropped at once too
}
