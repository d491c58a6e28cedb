package finance

import (
	"context"
	"fmt"
	"time"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

const dayTotalsSQL = `
	SELECT org_id, property_id, business_date,
	  COALESCE(sum(amount_cents) FILTER (WHERE status = 'approved' AND kind = 'revenue' AND payment_mode = 'cash'), 0),
	  COALESCE(sum(amount_cents) FILTER (WHERE status = 'approved' AND kind = 'revenue' AND payment_mode = 'bank'), 0),
	  COALESCE(sum(amount_cents) FILTER (WHERE status = 'approved' AND kind = 'expense' AND payment_mode = 'cash'), 0),
	  COALESCE(sum(amount_cents) FILTER (WHERE status = 'approved' AND kind = 'expense' AND payment_mode = 'bank'), 0),
	  COALESCE(sum(amount_cents) FILTER (WHERE status = 'pending' AND kind = 'revenue' AND payment_mode = 'cash'), 0),
	  COALESCE(sum(amount_cents) FILTER (WHERE status = 'pending' AND kind = 'revenue' AND payment_mode = 'bank'), 0),
	  COALESCE(sum(amount_cents) FILTER (WHERE status = 'pending' AND kind = 'expense' AND payment_mode = 'cash'), 0),
	  COALESCE(sum(amount_cents) FILTER (WHERE status = 'pending' AND kind = 'expense' AND payment_mode = 'bank'), 0),
	  count(*) FILTER (WHERE status = 'approved'),
	  count(*) FILTER (WHERE status = 'pending')
	FROM transactions
	WHERE status IN ('approved', 'pending')
	  AND ($1::uuid IS NULL OR org_id = $1)
	  AND ($2::uuid IS NULL OR property_id = $2)
	GROUP BY org_id, property_id, business_date
	ORDER BY org_id, property_id, business_date`

// StreamDayTotals calls fn with what the approved and the pending
// transactions of each property day add up to (the truth the cash book
// projection must equal), for every day that has any, ordered by organization, property and date,
// streaming (nothing is held in memory). A nil org means every
// organization; a nil property every property of the scope.
func (s *Service) StreamDayTotals(ctx context.Context, org, property *domain.ID, fn func(domain.DayFlows) error) error {
	rows, err := s.pool.Query(ctx, dayTotalsSQL, org, property)
	if err != nil {
		return fmt.Errorf("day totals: %w", postgres.Translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			t domain.DayFlows
			d time.Time
		)
		if err := rows.Scan(&t.OrgID, &t.PropertyID, &d, &t.CashReceived, &t.BankReceived, &t.CashExpenses, &t.BankExpenses,
			&t.PendingCashReceived, &t.PendingBankReceived, &t.PendingCashExpenses, &t.PendingBankExpenses,
			&t.ApprovedCount, &t.PendingCount); err != nil {
			return fmt.Errorf("day totals: %w", err)
		}
		t.Date = domain.DateOf(d)
		if err := fn(t); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("day totals: %w", postgres.Translate(err))
	}
	return nil
}
