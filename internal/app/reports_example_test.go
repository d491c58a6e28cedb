package app_test

import (
	"fmt"
	"testing"

	"hmp/internal/apptest"
)

// The worked example of API.md must hold exactly.
func TestWorkedExample(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster)
	org := env.Signup("Worked Example")
	pid := env.Property(org.AdminToken, "Sea View", "UTC")
	days := []struct{ cashIn, bankIn, cashOut, bankOut int64 }{
		{5000, 3000, 2000, 1000}, {7000, 2000, 3000, 500}, {4000, 1500, 1500, 300},
	}
	var token string
	for i, d := range days {
		at := fmt.Sprintf("2026-03-%02dT10:00:00Z", i+1)
		env.Revenue(org.AdminToken, apptest.Txn{PropertyID: pid, AmountCents: d.cashIn, PaymentMode: "cash", OccurredAt: at})
		env.Revenue(org.AdminToken, apptest.Txn{PropertyID: pid, AmountCents: d.bankIn, PaymentMode: "bank", OccurredAt: at})
		env.Expense(org.AdminToken, apptest.Txn{PropertyID: pid, AmountCents: d.cashOut, PaymentMode: "cash", OccurredAt: at})
		r := env.Must(201, "POST", "/v1/finance/expenses", org.AdminToken, apptest.Txn{PropertyID: pid, Category: "laundry", AmountCents: d.bankOut, PaymentMode: "bank", OccurredAt: at})
		token = r.Header.Get("X-Consistency-Token")
	}
	var m struct {
		OpeningBalanceCents, ClosingBalanceCents                                                       int64
		TotalCashReceivedCents, TotalBankReceivedCents, TotalCashExpensesCents, TotalBankExpensesCents int64
		NetCashFlowCents, TransactionCount                                                             int64
		DailyReports                                                                                   []struct {
			Date                                     string
			OpeningBalanceCents, ClosingBalanceCents int64
		}
	}
	env.Must(200, "GET", "/v1/reports/monthly-report?propertyId="+pid+"&year=2026&month=3", org.AdminToken, nil,
		"X-Consistency-Token", token).JSON(t, &m)
	if m.OpeningBalanceCents != 0 || m.ClosingBalanceCents != 9500 || m.TotalCashReceivedCents != 16000 ||
		m.TotalBankReceivedCents != 6500 || m.TotalCashExpensesCents != 6500 || m.TotalBankExpensesCents != 1800 ||
		m.NetCashFlowCents != 14200 || m.TransactionCount != 12 {
		t.Fatalf("monthly report = %+v", m)
	}
	want := []int64{3000, 7000, 9500}
	for i, w := range want {
		if got := m.DailyReports[i].ClosingBalanceCents; got != w {
			t.Errorf("day %d closing = %d, want %d", i+1, got, w)
		}
	}
	if len(m.DailyReports) != 31 || m.DailyReports[30].ClosingBalanceCents != 9500 {
		t.Errorf("days = %d, last closing %d", len(m.DailyReports), m.DailyReports[len(m.DailyReports)-1].ClosingBalanceCents)
	}
}
