package finance_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/finance"
)

type truthBundle struct {
	pool          *pgxpool.Pool
	svc           *finance.Service
	org, p1, p2   domain.ID
	other, otherP domain.ID
}

func setupTruth(t *testing.T) truthBundle {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 6, 15, 6, 30, 0, 0, time.UTC)
	b := truthBundle{pool: cluster.NewPool(t), org: domain.NewID(now), p1: domain.NewID(now), p2: domain.NewID(now),
		other: domain.NewID(now), otherP: domain.NewID(now)}
	b.svc = finance.New(b.pool, nil, func() time.Time { return now })
	for _, o := range []struct{ org, prop domain.ID }{{b.org, b.p1}, {b.org, b.p2}, {b.other, b.otherP}} {
		if _, err := b.pool.Exec(ctx, `INSERT INTO orgs (id, name, created_at) VALUES ($1, 'o', $2) ON CONFLICT DO NOTHING`, o.org, now); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, `INSERT INTO properties (org_id, id, name, type, timezone, currency, created_at)
			VALUES ($1, $2, 'p', 'hotel', 'UTC', 'INR', $3)`, o.org, o.prop, now); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// add inserts a transaction row as finance keeps it.
func (b truthBundle) add(t *testing.T, org, prop domain.ID, kind domain.Kind, status domain.Status, mode domain.PaymentMode, date string, cents int64) {
	t.Helper()
	source, category := any("room"), any(nil)
	if kind == domain.Expense {
		source, category = nil, "supplies"
	}
	now := time.Now()
	_, err := b.pool.Exec(context.Background(), `
		INSERT INTO transactions (org_id, id, kind, property_id, source, category, amount_cents, currency, payment_mode,
			occurred_at, business_date, status, version, created_by, created_at, updated_by, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'INR', $8, $9, $10, $11, 1, $1, $9, $1, $9)`,
		org, domain.NewID(now), string(kind), prop, source, category, cents, string(mode), now, date, string(status))
	if err != nil {
		t.Fatalf("add %s %s %s %d: %v", kind, status, mode, cents, err)
	}
}

// The truth of a property day: approved and pending sums per kind and
// payment mode and the row counts; rejected rows add nothing, days and
// properties and organizations stay apart, the scope filters.
func TestStreamDayTotals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTruth(t)
	const d1, d2 = "2026-06-01", "2026-06-02"
	b.add(t, b.org, b.p1, domain.Revenue, domain.Approved, domain.Cash, d1, 100)
	b.add(t, b.org, b.p1, domain.Revenue, domain.Approved, domain.Cash, d1, 20)
	b.add(t, b.org, b.p1, domain.Revenue, domain.Approved, domain.Bank, d1, 3)
	b.add(t, b.org, b.p1, domain.Expense, domain.Approved, domain.Cash, d1, 40)
	b.add(t, b.org, b.p1, domain.Expense, domain.Approved, domain.Bank, d1, 5)
	b.add(t, b.org, b.p1, domain.Revenue, domain.Pending, domain.Cash, d1, 600)
	b.add(t, b.org, b.p1, domain.Revenue, domain.Pending, domain.Bank, d1, 70)
	b.add(t, b.org, b.p1, domain.Expense, domain.Pending, domain.Cash, d1, 8000)
	b.add(t, b.org, b.p1, domain.Expense, domain.Pending, domain.Bank, d1, 90000)
	b.add(t, b.org, b.p1, domain.Revenue, domain.Rejected, domain.Cash, d1, 1_000_000)
	b.add(t, b.org, b.p1, domain.Expense, domain.Approved, domain.Cash, d2, 9)
	b.add(t, b.org, b.p2, domain.Revenue, domain.Approved, domain.Bank, d1, 11)
	b.add(t, b.org, b.p2, domain.Revenue, domain.Rejected, domain.Bank, d2, 12) // a day of rejected rows only: no truth
	b.add(t, b.other, b.otherP, domain.Revenue, domain.Approved, domain.Cash, d1, 13)

	day := func(org, prop domain.ID, date string, f domain.Flows) domain.DayFlows {
		return domain.DayFlows{OrgID: org, PropertyID: prop, Date: domain.MustDate(date), Flows: f}
	}
	all := map[string]domain.DayFlows{
		"p1 d1": day(b.org, b.p1, d1, domain.Flows{CashReceived: 120, BankReceived: 3, CashExpenses: 40, BankExpenses: 5,
			PendingCashReceived: 600, PendingBankReceived: 70, PendingCashExpenses: 8000, PendingBankExpenses: 90000,
			ApprovedCount: 5, PendingCount: 4}),
		"p1 d2": day(b.org, b.p1, d2, domain.Flows{CashExpenses: 9, ApprovedCount: 1}),
		"p2 d1": day(b.org, b.p2, d1, domain.Flows{BankReceived: 11, ApprovedCount: 1}),
		"other": day(b.other, b.otherP, d1, domain.Flows{CashReceived: 13, ApprovedCount: 1}),
	}
	for _, tc := range []struct {
		name      string
		org, prop *domain.ID
		want      []string
	}{
		{"one property", &b.org, &b.p1, []string{"p1 d1", "p1 d2"}},
		{"one organization", &b.org, nil, []string{"p1 d1", "p1 d2", "p2 d1"}},
		{"everything", nil, nil, []string{"p1 d1", "p1 d2", "p2 d1", "other"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []domain.DayFlows
			err := b.svc.StreamDayTotals(ctx, tc.org, tc.prop, func(d domain.DayFlows) error {
				if d.OrgID == b.org || d.OrgID == b.other {
					got = append(got, d)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var want []domain.DayFlows
			for _, n := range tc.want {
				want = append(want, all[n])
			}
			// Stream order is (org, property, date): sort want the same way.
			sortDays(want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("day totals\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TruthSums in a LEFT JOIN grouped by keys (how the corrections use it): a
// key without transactions sums to zero, a month sums its days.
func TestTruthSumsByKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTruth(t)
	b.add(t, b.org, b.p1, domain.Revenue, domain.Approved, domain.Cash, "2026-06-01", 100)
	b.add(t, b.org, b.p1, domain.Expense, domain.Pending, domain.Bank, "2026-06-30", 7)
	b.add(t, b.org, b.p1, domain.Revenue, domain.Approved, domain.Cash, "2026-07-01", 1000)
	rows, err := b.pool.Query(ctx, `
		SELECT k.m,`+finance.TruthSums+`
		FROM unnest($3::date[]) AS k(m)
		LEFT JOIN transactions t ON t.org_id = $1 AND t.property_id = $2
		  AND t.business_date >= k.m AND t.business_date < (k.m + interval '1 month')::date
		  AND t.status IN ('approved', 'pending')
		GROUP BY k.m ORDER BY k.m`, b.org, b.p1, []time.Time{
		domain.MustDate("2026-05-01").Time(), domain.MustDate("2026-06-01").Time(), domain.MustDate("2026-07-01").Time()})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []domain.Flows
	for rows.Next() {
		var (
			m time.Time
			f domain.Flows
		)
		if err := rows.Scan(&m, &f.CashReceived, &f.BankReceived, &f.CashExpenses, &f.BankExpenses,
			&f.PendingCashReceived, &f.PendingBankReceived, &f.PendingCashExpenses, &f.PendingBankExpenses,
			&f.ApprovedCount, &f.PendingCount); err != nil {
			t.Fatal(err)
		}
		got = append(got, f)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []domain.Flows{{}, {CashReceived: 100, ApprovedCount: 1, PendingBankExpenses: 7, PendingCount: 1}, {CashReceived: 1000, ApprovedCount: 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("month truths\n got %v\nwant %v", got, want)
	}
}

func sortDays(days []domain.DayFlows) {
	slices.SortFunc(days, func(a, b domain.DayFlows) int {
		if c := slices.Compare(a.OrgID[:], b.OrgID[:]); c != 0 {
			return c
		}
		if c := slices.Compare(a.PropertyID[:], b.PropertyID[:]); c != 0 {
			return c
		}
		return a.Date.Compare(b.Date)
	})
}
