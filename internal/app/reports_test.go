package app_test

import (
	"fmt"
	"testing"
)

// repWorkedExample records the worked example of API.md on a UTC property:
// March 1 to 3, 2026, four approved rows a day.
func repWorkedExample(f *repFixture, prop string) {
	f.t.Helper()
	days := []struct{ cashIn, bankIn, cashOut, bankOut int64 }{
		{5000, 3000, 2000, 1000}, {7000, 2000, 3000, 500}, {4000, 1500, 1500, 300},
	}
	for i, d := range days {
		at := fmt.Sprintf("2026-03-%02dT10:00:00Z", i+1)
		f.create(f.admin, "revenue", prop, d.cashIn, "cash", at)
		f.create(f.admin, "revenue", prop, d.bankIn, "bank", at)
		f.create(f.admin, "expense", prop, d.cashOut, "cash", at)
		f.create(f.admin, "expense", prop, d.bankOut, "bank", at)
	}
}

// The other report views agree with the worked example of API.md to the
// cent: one day, a range with empty days on both sides, a range starting
// mid-way, the month and the year.
func TestReportsWorkedExampleViews(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Worked Views")
	prop := f.property("Sea View", "UTC")
	repWorkedExample(f, prop)

	t.Run("daily report of the second day", func(t *testing.T) {
		f := f.in(t)
		got := f.daily(f.admin, prop, "2026-03-02", false)
		want := repDay{PropertyID: prop, Date: "2026-03-02", OpeningBalanceCents: 3000,
			CashReceivedCents: 7000, BankReceivedCents: 2000, TotalReceivedCents: 9000,
			CashExpensesCents: 3000, BankExpensesCents: 500, TotalExpensesCents: 3500,
			ClosingBalanceCents: 7000, NextDayOpeningBalanceCents: 7000, NetCashFlowCents: 5500, TransactionCount: 4}
		if got != want {
			t.Fatalf("daily report =\n %s\nwant\n %s", got, want)
		}
	})

	t.Run("daily report of a day without rows carries the balance", func(t *testing.T) {
		f := f.in(t)
		got := f.daily(f.admin, prop, "2026-04-20", false)
		want := repDay{PropertyID: prop, Date: "2026-04-20", OpeningBalanceCents: 9500, ClosingBalanceCents: 9500, NextDayOpeningBalanceCents: 9500}
		if got != want {
			t.Fatalf("daily report =\n %s\nwant\n %s", got, want)
		}
		if before := f.daily(f.admin, prop, "2026-02-28", false); before != (repDay{PropertyID: prop, Date: "2026-02-28"}) {
			t.Fatalf("the day before the first row = %s, want all zero", before)
		}
	})

	t.Run("daily reports over a range with empty days", func(t *testing.T) {
		f := f.in(t)
		r := f.dailies(f.admin, prop, "2026-02-27", "2026-03-05", false)
		dates := []string{"2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"}
		openings := []int64{0, 0, 0, 3000, 7000, 9500, 9500}
		closings := []int64{0, 0, 3000, 7000, 9500, 9500, 9500}
		counts := []int64{0, 0, 4, 4, 4, 0, 0}
		if len(r.Reports) != len(dates) {
			t.Fatalf("%d reports, want %d", len(r.Reports), len(dates))
		}
		for i, d := range r.Reports {
			if d.Date != dates[i] || d.PropertyID != prop || d.OpeningBalanceCents != openings[i] || d.ClosingBalanceCents != closings[i] ||
				d.NextDayOpeningBalanceCents != closings[i] || d.TransactionCount != counts[i] {
				t.Errorf("report %d = %s, want %s opening %d closing %d n %d", i, d, dates[i], openings[i], closings[i], counts[i])
			}
		}
		want := repSummary{OpeningBalanceCents: 0, ClosingBalanceCents: 9500, CashReceivedCents: 16000, BankReceivedCents: 6500,
			TotalReceivedCents: 22500, CashExpensesCents: 6500, BankExpensesCents: 1800, TotalExpensesCents: 8300,
			NetCashFlowCents: 14200, TransactionCount: 12}
		if r.Summary != want {
			t.Fatalf("summary = %+v, want %+v", r.Summary, want)
		}
	})

	t.Run("daily reports summary opens with the first day and closes with the last", func(t *testing.T) {
		f := f.in(t)
		r := f.dailies(f.admin, prop, "2026-03-02", "2026-03-03", false)
		want := repSummary{OpeningBalanceCents: 3000, ClosingBalanceCents: 9500, CashReceivedCents: 11000, BankReceivedCents: 3500,
			TotalReceivedCents: 14500, CashExpensesCents: 4500, BankExpensesCents: 800, TotalExpensesCents: 5300,
			NetCashFlowCents: 9200, TransactionCount: 8}
		if r.Summary != want {
			t.Fatalf("summary = %+v, want %+v", r.Summary, want)
		}
		one := f.dailies(f.admin, prop, "2026-03-03", "2026-03-03", false)
		if len(one.Reports) != 1 || one.Summary.OpeningBalanceCents != 7000 || one.Summary.ClosingBalanceCents != 9500 {
			t.Fatalf("one-day range = %+v", one)
		}
	})

	t.Run("monthly report", func(t *testing.T) {
		f := f.in(t)
		m := f.monthly(f.admin, prop, 2026, 3, false)
		if m.Year != 2026 || m.Month != 3 || m.PropertyID != prop || m.OpeningBalanceCents != 0 || m.ClosingBalanceCents != 9500 ||
			m.TotalCashReceivedCents != 16000 || m.TotalBankReceivedCents != 6500 || m.TotalCashExpensesCents != 6500 ||
			m.TotalBankExpensesCents != 1800 || m.NetCashFlowCents != 14200 || m.TransactionCount != 12 {
			t.Fatalf("monthly report = %+v", m)
		}
		if m.ProfitMargin != 63.11 { // 14200 / 22500 = 63.111…%
			t.Fatalf("profitMargin = %v, want 63.11", m.ProfitMargin)
		}
		if len(m.DailyReports) != 31 || m.DailyReports[0].Date != "2026-03-01" || m.DailyReports[30].Date != "2026-03-31" {
			t.Fatalf("dailyReports: %d days from %s", len(m.DailyReports), m.DailyReports[0].Date)
		}
		april := f.monthly(f.admin, prop, 2026, 4, false)
		if len(april.DailyReports) != 30 || april.OpeningBalanceCents != 9500 || april.ClosingBalanceCents != 9500 ||
			april.NetCashFlowCents != 0 || april.ProfitMargin != 0 || april.TransactionCount != 0 {
			t.Fatalf("april = %+v", april)
		}
		feb := f.monthly(f.admin, prop, 2026, 2, false)
		if len(feb.DailyReports) != 28 || feb.OpeningBalanceCents != 0 || feb.ClosingBalanceCents != 0 {
			t.Fatalf("february = %d days, open %d close %d", len(feb.DailyReports), feb.OpeningBalanceCents, feb.ClosingBalanceCents)
		}
	})

	t.Run("yearly summary", func(t *testing.T) {
		f := f.in(t)
		y := f.yearly(f.admin, prop, 2026)
		if y.Year != 2026 || y.PropertyID != prop || len(y.Months) != 12 {
			t.Fatalf("yearly summary = %+v", y)
		}
		for i, m := range y.Months {
			want := repMonthSummary{Month: i + 1}
			switch {
			case i+1 == 3:
				want = repMonthSummary{Month: 3, OpeningBalanceCents: 0, ClosingBalanceCents: 9500, TotalReceivedCents: 22500,
					TotalExpensesCents: 8300, NetCashFlowCents: 14200, TransactionCount: 12}
			case i+1 > 3:
				want.OpeningBalanceCents, want.ClosingBalanceCents = 9500, 9500
			}
			if m != want {
				t.Errorf("month %d = %+v, want %+v", i+1, m, want)
			}
		}
		tot := y.Totals
		if tot.TotalReceivedCents != 22500 || tot.TotalExpensesCents != 8300 || tot.NetCashFlowCents != 14200 ||
			tot.ProfitMargin != 63.11 || tot.TransactionCount != 12 {
			t.Fatalf("totals = %+v", tot)
		}
		prev := f.yearly(f.admin, prop, 2025)
		if prev.Totals.TotalReceivedCents != 0 || prev.Months[11].ClosingBalanceCents != 0 {
			t.Fatalf("2025 = %+v", prev)
		}
	})
}

// profitMargin is net cash flow over total received in percent, rounded
// to two decimals, halves away from zero; 0 when nothing was received.
func TestReportsProfitMarginRounding(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Margins")
	prop := f.property("Margins", "UTC")
	// Each month gets its own figures: received, spent, the margin.
	cases := []struct {
		month             int
		received, expense int64
		want              float64
	}{
		{1, 160, 137, 14.38},  // 23 / 160 = 14.375 %: a half, rounded up
		{2, 160, 183, -14.38}, // -14.375 %: a half, rounded away from zero
		{3, 3, 2, 33.33},      // 33.333… %
		{4, 3, 1, 66.67},      // 66.666… %
		{5, 800, 700, 12.5},   // exact
		{6, 0, 500, 0},        // nothing received
	}
	for _, c := range cases {
		at := fmt.Sprintf("2025-%02d-10T10:00:00Z", c.month)
		if c.received > 0 {
			f.create(f.admin, "revenue", prop, c.received, "bank", at)
		}
		f.create(f.admin, "expense", prop, c.expense, "cash", at)
	}
	for _, c := range cases {
		m := f.monthly(f.admin, prop, 2025, c.month, false)
		if m.ProfitMargin != c.want || m.NetCashFlowCents != c.received-c.expense {
			t.Errorf("2025-%02d: profitMargin %v net %d, want %v net %d", c.month, m.ProfitMargin, m.NetCashFlowCents, c.want, c.received-c.expense)
		}
	}
	// The year: received 1126, spent 1523, net -397: -35.257… %.
	y := f.yearly(f.admin, prop, 2025)
	if y.Totals.TotalReceivedCents != 1126 || y.Totals.TotalExpensesCents != 1523 || y.Totals.ProfitMargin != -35.26 {
		t.Fatalf("2025 totals = %+v, want received 1126, spent 1523, margin -35.26", y.Totals)
	}
}

// A monthly report without propertyId sums, per day, every property the
// caller may see: all of them for an ADMIN, the assigned ones for a
// MANAGER, none for a MANAGER without properties.
func TestReportsMonthlyAcrossProperties(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Many Roofs")
	p1 := f.property("Harbour", "UTC")
	p2 := f.property("Hills", "Asia/Kolkata")
	p3 := f.property("Lagoon", "America/New_York")
	_, mgr := f.env.Manager(f.admin, "two@roofs.test", p1, p2)
	_, idle := f.env.Manager(f.admin, "none@roofs.test")
	l := newRepLedger()
	l.zones[p1], l.zones[p2], l.zones[p3] = repZone(t, "UTC"), repZone(t, "Asia/Kolkata"), repZone(t, "America/New_York")
	add := func(kind, prop string, amount int64, mode, at string) {
		r := f.create(f.admin, kind, prop, amount, mode, at)
		l.rows[r.ID] = &repRow{kind: kind, prop: prop, amount: amount, mode: mode, at: repTime(t, at), status: "approved"}
	}
	add("revenue", p1, 10000, "cash", "2026-04-30T12:00:00Z") // April: every opening of May
	add("revenue", p2, 20000, "cash", "2026-04-30T12:00:00Z")
	add("expense", p3, 4000, "cash", "2026-04-30T12:00:00Z")
	add("revenue", p1, 1111, "cash", "2026-05-01T09:00:00Z")
	add("revenue", p2, 2222, "bank", "2026-04-30T20:00:00Z") // May 1 in Kolkata
	add("revenue", p3, 3333, "cash", "2026-05-01T02:00:00Z") // April 30 in New York
	add("expense", p1, 500, "bank", "2026-05-15T09:00:00Z")
	add("expense", p2, 700, "cash", "2026-05-15T09:00:00Z")
	add("revenue", p3, 9000, "cash", "2026-05-15T09:00:00Z")
	add("expense", p3, 250, "bank", "2026-05-31T23:00:00Z")  // May 31 in New York
	add("revenue", p2, 800, "cash", "2026-05-31T20:00:00Z")  // June 1 in Kolkata
	add("revenue", p1, 90, "cash", "2026-05-31T23:59:59Z")   // May 31 in UTC
	add("expense", p3, 6000, "cash", "2026-06-01T02:00:00Z") // May 31 in New York
	// A cash count belongs to one drawer: summed reports never show one.
	f.write(201, "POST", "/v1/reports/cash-counts", f.admin, map[string]any{"propertyId": p1, "date": "2026-05-15", "countedClosingCents": 1})

	may1, may31 := repParse(t, "2026-05-01"), repParse(t, "2026-05-31")
	all := f.monthly(f.admin, "", 2026, 5, false)
	if all.PropertyID != "" {
		t.Fatalf("an all-properties report names property %q", all.PropertyID)
	}
	repCheckMonth(t, "ADMIN over all properties", all, l.days([]string{p1, p2, p3}, may1, may31, false))
	// 3333 falls on April 30 in New York, 2222 on May 1 in Kolkata.
	if all.OpeningBalanceCents != 29333 || all.ClosingBalanceCents != 32834 {
		t.Fatalf("ADMIN May opening %d closing %d", all.OpeningBalanceCents, all.ClosingBalanceCents)
	}
	mine := f.monthly(mgr, "", 2026, 5, false)
	repCheckMonth(t, "MANAGER over assigned properties", mine, l.days([]string{p1, p2}, may1, may31, false))
	if mine.OpeningBalanceCents != 30000 || mine.ClosingBalanceCents != 30000+1111-700+90 || mine.TotalBankReceivedCents != 2222 ||
		mine.TotalBankExpensesCents != 500 || mine.TransactionCount != 5 {
		t.Fatalf("MANAGER May = %+v", mine)
	}
	none := f.monthly(idle, "", 2026, 5, false)
	repCheckMonth(t, "MANAGER without properties", none, l.days(nil, may1, may31, false))
	// One property's monthly report still shows its count.
	one := f.monthly(f.admin, p1, 2026, 5, false)
	l.counts[p1+"/2026-05-15"] = 1
	repCheckMonth(t, "one property", one, l.days([]string{p1}, may1, may31, false))
	// The yearly summary without propertyId sums the same way.
	y := f.yearly(mgr, "", 2026)
	if got := y.Months[3]; got.TotalReceivedCents != 30000 || got.ClosingBalanceCents != 30000 {
		t.Fatalf("MANAGER April = %+v", got)
	}
	if got := y.Months[4]; got.TotalReceivedCents != 1111+2222+90 || got.TotalExpensesCents != 1200 || got.ClosingBalanceCents != 30501 {
		t.Fatalf("MANAGER May = %+v", got)
	}
}

// Only approved rows count unless includePending=true; a pending row then
// counts in every figure, transactionCount included.
func TestReportsIncludePending(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Pending Views")
	prop := f.property("Sea View", "UTC")
	_, mgr := f.env.Manager(f.admin, "pending@views.test", prop)
	f.create(f.admin, "revenue", prop, 10000, "cash", "2026-05-10T10:00:00Z")
	f.create(mgr, "revenue", prop, 2500, "cash", "2026-05-10T11:00:00Z")
	f.create(mgr, "revenue", prop, 700, "bank", "2026-05-11T11:00:00Z")
	f.create(mgr, "expense", prop, 1200, "cash", "2026-05-09T11:00:00Z")

	approved := f.daily(f.admin, prop, "2026-05-10", false)
	if approved.OpeningBalanceCents != 0 || approved.CashReceivedCents != 10000 || approved.ClosingBalanceCents != 10000 || approved.TransactionCount != 1 {
		t.Fatalf("approved only = %s", approved)
	}
	pending := f.daily(f.admin, prop, "2026-05-10", true)
	if pending.OpeningBalanceCents != -1200 || pending.CashReceivedCents != 12500 || pending.ClosingBalanceCents != 11300 || pending.TransactionCount != 2 {
		t.Fatalf("with pending = %s", pending)
	}
	if d := f.daily(mgr, prop, "2026-05-11", true); d.BankReceivedCents != 700 || d.ClosingBalanceCents != 11300 || d.NetCashFlowCents != 700 {
		t.Fatalf("manager's view with pending = %s", d)
	}
	r := f.dailies(f.admin, prop, "2026-05-09", "2026-05-11", true)
	if r.Summary.OpeningBalanceCents != 0 || r.Summary.ClosingBalanceCents != 11300 || r.Summary.TransactionCount != 4 ||
		r.Summary.TotalReceivedCents != 13200 || r.Summary.TotalExpensesCents != 1200 {
		t.Fatalf("range with pending = %+v", r.Summary)
	}
	m := f.monthly(f.admin, prop, 2026, 5, false)
	if m.TotalCashReceivedCents != 10000 || m.TotalBankReceivedCents != 0 || m.TotalCashExpensesCents != 0 || m.TransactionCount != 1 || m.ProfitMargin != 100 {
		t.Fatalf("month approved only = %+v", m)
	}
	m = f.monthly(f.admin, prop, 2026, 5, true)
	if m.TotalCashReceivedCents != 12500 || m.TotalBankReceivedCents != 700 || m.TotalCashExpensesCents != 1200 || m.TransactionCount != 4 ||
		m.ClosingBalanceCents != 11300 || m.NetCashFlowCents != 12000 || m.ProfitMargin != 90.91 {
		t.Fatalf("month with pending = %+v", m)
	}
	all := f.monthly(mgr, "", 2026, 5, true)
	if all.TransactionCount != 4 || all.ClosingBalanceCents != 11300 {
		t.Fatalf("manager's all-properties month with pending = %+v", all)
	}
	y := f.yearly(f.admin, prop, 2026)
	if y.Months[4].TotalReceivedCents != 10000 || y.Totals.TransactionCount != 1 {
		t.Fatalf("yearly summary counts pending rows: %+v", y.Months[4])
	}
}
