package app_test

import (
	"testing"
)

// TestReportsAcceptedDateEdges: a balance the projector carried forward
// reaches the last date a report may be asked for (a year after today,
// 2026-06-15 on the fixture's clock). How the report routes refuse bad
// input, and that the edge dates are accepted, is internal/httpapi's
// TestReportsBadInput, which runs no projector.
func TestReportsAcceptedDateEdges(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Accepted Report Edges")
	prop := f.property("Strict", "UTC")
	f.create(f.admin, "revenue", prop, 100, "cash", "2026-05-01T10:00:00Z")
	f.drain()

	if d := f.daily(f.admin, prop, "2027-06-15", false); d.ClosingBalanceCents != 100 {
		t.Fatalf("2027-06-15 = %s", d)
	}
	if m := f.monthly(f.admin, "", 2027, 12, false); len(m.DailyReports) != 31 || m.ClosingBalanceCents != 100 {
		t.Fatalf("December 2027 = %+v", m)
	}
}
