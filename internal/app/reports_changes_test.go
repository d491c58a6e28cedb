package app_test

import (
	"slices"
	"testing"

	"hmp/internal/apptest"
)

// Balances without cascades, seen from outside: a back-dated change to one
// day moves the closing of every later day (and the openings of later
// months); a row moved between days, payment modes and properties leaves
// the right figures on both sides.
func TestReportsBackDatedChanges(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Back Dated")
	cove := f.property("Cove", "UTC")
	peak := f.property("Peak", "Asia/Kolkata")
	l := newRepLedger()
	l.zones[cove], l.zones[peak] = repZone(t, "UTC"), repZone(t, "Asia/Kolkata")
	apr1, may5 := repParse(t, "2026-04-01"), repParse(t, "2026-05-05")
	// check compares both properties' whole range with the ledger, and
	// Cove's April 1-5 closings and its May 2 opening with explicit values.
	check := func(t *testing.T, closings []int64, mayOpening int64) {
		t.Helper()
		f := f.in(t)
		for _, p := range []string{cove, peak} {
			repSameDays(t, "range of "+p, f.dailies(f.admin, p, "2026-04-01", "2026-05-05", false).Reports, l.days([]string{p}, apr1, may5, false))
		}
		if got := f.closings(f.admin, cove, "2026-04-01", "2026-04-05"); !slices.Equal(got, closings) {
			t.Fatalf("closings April 1-5 = %v, want %v", got, closings)
		}
		if got := f.daily(f.admin, cove, "2026-05-02", false); got.OpeningBalanceCents != mayOpening || got.ClosingBalanceCents != mayOpening-300 {
			t.Fatalf("May 2 = %s, want opening %d", got, mayOpening)
		}
		if got := f.monthly(f.admin, cove, 2026, 5, false); got.OpeningBalanceCents != mayOpening || got.ClosingBalanceCents != mayOpening-300 {
			t.Fatalf("May opening %d closing %d, want %d and %d", got.OpeningBalanceCents, got.ClosingBalanceCents, mayOpening, mayOpening-300)
		}
	}
	add := func(f *repFixture, kind, prop string, amount int64, mode, at string) string {
		r := f.create(f.admin, kind, prop, amount, mode, at)
		l.rows[r.ID] = &repRow{kind: kind, prop: prop, amount: amount, mode: mode, at: repTime(t, at), status: "approved"}
		return r.ID
	}
	days := []string{"2026-04-01", "2026-04-02", "2026-04-03", "2026-04-04", "2026-04-05"}
	ids := make([]string, len(days))
	for i, d := range days {
		ids[i] = add(f, "revenue", cove, 1000, "cash", d+"T20:00:00Z")
	}
	add(f, "expense", cove, 300, "cash", "2026-05-02T09:00:00Z")
	check(t, []int64{1000, 2000, 3000, 4000, 5000}, 5000)

	t.Run("a back-dated row on day 1 shifts every later closing", func(t *testing.T) {
		add(f.in(t), "revenue", cove, 500, "cash", "2026-04-01T08:00:00Z")
		check(t, []int64{1500, 2500, 3500, 4500, 5500}, 5500)
	})

	t.Run("a back-dated edit of day 1 shifts every later closing", func(t *testing.T) {
		f := f.in(t)
		f.patch(f.admin, "revenue", ids[0], map[string]any{"amountCents": 400})
		l.rows[ids[0]].amount = 400
		check(t, []int64{900, 1900, 2900, 3900, 4900}, 4900)
	})

	t.Run("a row moved to a later day leaves the days between", func(t *testing.T) {
		f := f.in(t)
		row := f.patch(f.admin, "revenue", ids[1], map[string]any{"occurredAt": "2026-04-04T20:00:00Z"})
		if row.BusinessDate != "2026-04-04" || row.Status != "approved" {
			t.Fatalf("moved row = %+v", row)
		}
		l.rows[ids[1]].at = repTime(t, "2026-04-04T20:00:00Z")
		check(t, []int64{900, 900, 1900, 3900, 4900}, 4900)
	})

	t.Run("a row moved from cash to bank leaves the cash balance", func(t *testing.T) {
		f := f.in(t)
		f.patch(f.admin, "revenue", ids[2], map[string]any{"paymentMode": "bank"})
		l.rows[ids[2]].mode = "bank"
		check(t, []int64{900, 900, 900, 2900, 3900}, 3900)
		d := f.daily(f.admin, cove, "2026-04-03", false)
		if d.CashReceivedCents != 0 || d.BankReceivedCents != 1000 || d.NetCashFlowCents != 1000 || d.ClosingBalanceCents != 900 {
			t.Fatalf("April 3 after the move to bank = %s", d)
		}
	})

	t.Run("a row moved to another property in another zone", func(t *testing.T) {
		f := f.in(t)
		// 20:00 UTC on April 5 is 01:30 on April 6 in Kolkata.
		row := f.patch(f.admin, "revenue", ids[4], map[string]any{"propertyId": peak})
		if row.PropertyID != peak || row.BusinessDate != "2026-04-06" {
			t.Fatalf("moved row = %+v", row)
		}
		l.rows[ids[4]].prop = peak
		check(t, []int64{900, 900, 900, 2900, 2900}, 2900)
		if d := f.daily(f.admin, peak, "2026-04-06", false); d.OpeningBalanceCents != 0 || d.CashReceivedCents != 1000 || d.ClosingBalanceCents != 1000 {
			t.Fatalf("Peak April 6 = %s", d)
		}
		if d := f.daily(f.admin, peak, "2026-04-05", false); d.ClosingBalanceCents != 0 || d.TransactionCount != 0 {
			t.Fatalf("Peak April 5 = %s", d)
		}
	})

	t.Run("a row moved back in bank, date and amount at once", func(t *testing.T) {
		f := f.in(t)
		f.patch(f.admin, "revenue", ids[4], map[string]any{"propertyId": cove, "occurredAt": "2026-03-31T23:00:00Z", "amountCents": 250, "paymentMode": "cash"})
		r := l.rows[ids[4]]
		r.prop, r.at, r.amount = cove, repTime(t, "2026-03-31T23:00:00Z"), 250
		check(t, []int64{1150, 1150, 1150, 3150, 3150}, 3150)
		if d := f.daily(f.admin, cove, "2026-04-01", false); d.OpeningBalanceCents != 250 {
			t.Fatalf("April 1 opening = %d, want 250 from March 31", d.OpeningBalanceCents)
		}
		if y := f.yearly(f.admin, cove, 2026); y.Months[2].ClosingBalanceCents != 250 || y.Months[3].OpeningBalanceCents != 250 || y.Months[3].ClosingBalanceCents != 3150 {
			t.Fatalf("yearly March %+v April %+v", y.Months[2], y.Months[3])
		}
	})
}

// The approval workflow as the reports see it: a pending row counts only
// once approved; a rejected one never; a MANAGER's edit of an approved row
// takes it out of the approved figures until approved again; an ADMIN's
// delete and an approved deletion request take a row out; a rejected
// deletion request changes nothing.
func TestReportsFollowTheWorkflow(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Workflow Views")
	prop := f.property("Dune", "UTC")
	_, mgr := f.env.Manager(f.admin, "dune@workflow.test", prop)
	// day reads May 10's cash in, closing and count, approved only and
	// with pending.
	type view struct{ cashIn, closing, n, pendingCashIn, pendingClosing, pendingN int64 }
	day := func(t *testing.T) view {
		t.Helper()
		f := f.in(t)
		a := f.daily(f.admin, prop, "2026-05-10", false)
		p := f.daily(f.admin, prop, "2026-05-10", true)
		return view{a.CashReceivedCents, a.ClosingBalanceCents, a.TransactionCount, p.CashReceivedCents, p.ClosingBalanceCents, p.TransactionCount}
	}
	expect := func(t *testing.T, want view) {
		t.Helper()
		if got := day(t); got != want {
			t.Fatalf("May 10 = %+v, want %+v", got, want)
		}
	}
	base := f.create(f.admin, "revenue", prop, 10000, "cash", "2026-05-10T08:00:00Z")
	expect(t, view{10000, 10000, 1, 10000, 10000, 1})

	var pending apptest.Row
	t.Run("a pending row counts only with includePending", func(t *testing.T) {
		f := f.in(t)
		pending = f.create(mgr, "revenue", prop, 3000, "cash", "2026-05-10T09:00:00Z")
		if pending.Status != "pending" {
			t.Fatalf("manager row = %+v", pending)
		}
		expect(t, view{10000, 10000, 1, 13000, 13000, 2})
	})

	t.Run("approving it makes it count", func(t *testing.T) {
		f := f.in(t)
		f.review("revenue", pending.ID, "approve")
		expect(t, view{13000, 13000, 2, 13000, 13000, 2})
	})

	t.Run("rejecting a pending row changes nothing", func(t *testing.T) {
		f := f.in(t)
		r := f.create(mgr, "expense", prop, 400, "cash", "2026-05-10T10:00:00Z")
		expect(t, view{13000, 13000, 2, 13000, 12600, 3})
		f.review("expense", r.ID, "reject")
		expect(t, view{13000, 13000, 2, 13000, 13000, 2})
		if d := f.daily(f.admin, prop, "2026-05-10", true); d.CashExpensesCents != 0 {
			t.Fatalf("a rejected expense still counts: %s", d)
		}
	})

	t.Run("a MANAGER's edit of an approved row takes it back to pending", func(t *testing.T) {
		f := f.in(t)
		row := f.patch(mgr, "revenue", pending.ID, map[string]any{"amountCents": 3500})
		if row.Status != "pending" {
			t.Fatalf("edited row = %+v", row)
		}
		expect(t, view{10000, 10000, 1, 13500, 13500, 2})
		if m := f.monthly(f.admin, prop, 2026, 5, false); m.TotalCashReceivedCents != 10000 || m.TransactionCount != 1 {
			t.Fatalf("May approved = %+v", m)
		}
		if m := f.monthly(f.admin, prop, 2026, 5, true); m.TotalCashReceivedCents != 13500 || m.TransactionCount != 2 {
			t.Fatalf("May with pending = %+v", m)
		}
		f.review("revenue", pending.ID, "approve")
		expect(t, view{13500, 13500, 2, 13500, 13500, 2})
	})

	t.Run("an ADMIN's delete of an approved row", func(t *testing.T) {
		f := f.in(t)
		f.write(204, "DELETE", "/v1/finance/revenues/"+base.ID, f.admin, nil)
		expect(t, view{3500, 3500, 1, 3500, 3500, 1})
	})

	t.Run("a rejected deletion request changes nothing", func(t *testing.T) {
		f := f.in(t)
		var req struct{ DeletionRequestID string }
		f.write(202, "DELETE", "/v1/finance/revenues/"+pending.ID, mgr, nil).JSON(t, &req)
		f.write(200, "POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/reject", f.admin, map[string]any{})
		expect(t, view{3500, 3500, 1, 3500, 3500, 1})
	})

	t.Run("a MANAGER's deletion request approved by an ADMIN", func(t *testing.T) {
		f := f.in(t)
		var req struct{ DeletionRequestID string }
		f.write(202, "DELETE", "/v1/finance/revenues/"+pending.ID, mgr, nil).JSON(t, &req)
		expect(t, view{3500, 3500, 1, 3500, 3500, 1}) // nothing deleted yet
		var dec struct{ ID, Status string }
		f.write(200, "POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/approve", f.admin, map[string]any{}).JSON(t, &dec)
		if dec.Status != "approved" {
			t.Fatalf("decision = %+v", dec)
		}
		expect(t, view{0, 0, 0, 0, 0, 0})
		if m := f.monthly(f.admin, prop, 2026, 5, true); m.TransactionCount != 0 || m.ClosingBalanceCents != 0 || m.NetCashFlowCents != 0 {
			t.Fatalf("May after every delete = %+v", m)
		}
	})
}

// A cash count shows on its day as countedClosingCents with
// discrepancyCents = counted − closing; a later count of the day replaces
// it; the discrepancy follows later changes of the closing; a MANAGER of
// another property cannot count here (404).
func TestReportsCashCounts(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Counted Cash")
	prop := f.property("Till", "UTC")
	other := f.property("Elsewhere", "UTC")
	_, mgr := f.env.Manager(f.admin, "till@counted.test", prop)
	_, stranger := f.env.Manager(f.admin, "elsewhere@counted.test", other)
	f.create(f.admin, "revenue", prop, 5000, "cash", "2026-05-20T08:00:00Z")
	f.create(f.admin, "revenue", prop, 900, "bank", "2026-05-20T08:00:00Z")
	f.create(f.admin, "expense", prop, 1200, "cash", "2026-05-20T09:00:00Z")
	count := func(token, date string, counted int64) (version int) {
		var out struct {
			PropertyID          string `json:"propertyId"`
			Date                string `json:"date"`
			CountedClosingCents int64  `json:"countedClosingCents"`
			Version             int    `json:"version"`
		}
		f.write(201, "POST", "/v1/reports/cash-counts", token, map[string]any{"propertyId": prop, "date": date, "countedClosingCents": counted}).JSON(t, &out)
		if out.PropertyID != prop || out.Date != date || out.CountedClosingCents != counted {
			t.Fatalf("cash count answer = %+v", out)
		}
		return out.Version
	}
	counted := func(t *testing.T, date string, wantCounted, wantDiscrepancy int64) {
		t.Helper()
		f := f.in(t)
		d := f.daily(f.admin, prop, date, false)
		if d.CountedClosingCents == nil || d.DiscrepancyCents == nil || *d.CountedClosingCents != wantCounted || *d.DiscrepancyCents != wantDiscrepancy {
			t.Fatalf("%s = %s, want counted %d, discrepancy %d", date, d, wantCounted, wantDiscrepancy)
		}
		if wantDiscrepancy != *d.CountedClosingCents-d.ClosingBalanceCents {
			t.Fatalf("%s: discrepancy %d is not counted %d − closing %d", date, wantDiscrepancy, *d.CountedClosingCents, d.ClosingBalanceCents)
		}
	}

	if d := f.daily(f.admin, prop, "2026-05-20", false); d.ClosingBalanceCents != 3800 || d.CountedClosingCents != nil || d.DiscrepancyCents != nil {
		t.Fatalf("before any count = %s", d)
	}
	if v := count(f.admin, "2026-05-20", 3750); v != 1 {
		t.Fatalf("first count version %d", v)
	}
	counted(t, "2026-05-20", 3750, -50)
	if v := count(mgr, "2026-05-20", 3900); v != 2 {
		t.Fatalf("second count version %d", v)
	}
	counted(t, "2026-05-20", 3900, 100)

	// A back-dated cash revenue moves the closing; the count stays.
	f.create(f.admin, "revenue", prop, 100, "cash", "2026-05-19T08:00:00Z")
	counted(t, "2026-05-20", 3900, 0)

	// A day without rows can be counted too; zero is a count.
	count(f.admin, "2026-05-25", 0)
	counted(t, "2026-05-25", 0, -3900)
	r := f.dailies(f.admin, prop, "2026-05-19", "2026-05-26", false)
	for _, d := range r.Reports {
		has := d.Date == "2026-05-20" || d.Date == "2026-05-25"
		if (d.CountedClosingCents != nil) != has || (d.DiscrepancyCents != nil) != has {
			t.Fatalf("range day %s", d)
		}
	}
	m := f.monthly(f.admin, prop, 2026, 5, false)
	if c := m.DailyReports[19].CountedClosingCents; c == nil || *c != 3900 {
		t.Fatalf("monthly May 20 = %s", m.DailyReports[19])
	}

	t.Run("a MANAGER of another property gets 404", func(t *testing.T) {
		f := f.in(t)
		r := f.env.Do("POST", "/v1/reports/cash-counts", stranger, map[string]any{"propertyId": prop, "date": "2026-05-20", "countedClosingCents": 1})
		repMustProblem(t, r, 404, "body.propertyId")
		r = f.env.Do("GET", repQuery("/v1/reports/daily-report", "propertyId", prop, "date", "2026-05-20"), stranger, nil)
		repMustProblem(t, r, 404, "query.propertyId")
		counted(t, "2026-05-20", 3900, 0)
	})
}
