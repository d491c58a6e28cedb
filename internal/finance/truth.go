package finance

import (
	"context"
	"fmt"
	"time"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// TruthSums is the truth the cash book must equal, written once: the
// SELECT list that sums the transactions aliased t of one group (a
// property day or month) into the ten figures of domain.Flows, in field
// order and named cr, br, ce, be (approved cash and bank received, cash
// and bank expenses), pcr, pbr, pce, pbe (the same, pending), ac and pc
// (the approved and the pending rows). Rejected rows add nothing, nor do
// the NULL rows of a LEFT JOIN that found none, so a group without
// transactions sums to zero. StreamDayTotals groups it by day; the
// correction statement of package reconcile groups it by its keys inside
// its own statement, so that the truth and the projection are read in one
// snapshot.
const TruthSums = `
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'revenue' AND t.payment_mode = 'cash'), 0) AS cr,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'revenue' AND t.payment_mode = 'bank'), 0) AS br,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'expense' AND t.payment_mode = 'cash'), 0) AS ce,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'approved' AND t.kind = 'expense' AND t.payment_mode = 'bank'), 0) AS be,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'revenue' AND t.payment_mode = 'cash'), 0) AS pcr,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'revenue' AND t.payment_mode = 'bank'), 0) AS pbr,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'expense' AND t.payment_mode = 'cash'), 0) AS pce,
	  COALESCE(sum(t.amount_cents) FILTER (WHERE t.status = 'pending' AND t.kind = 'expense' AND t.payment_mode = 'bank'), 0) AS pbe,
	  count(*) FILTER (WHERE t.status = 'approved') AS ac,
	  count(*) FILTER (WHERE t.status = 'pending') AS pc`

const dayTotalsSQL = `
	SELECT t.org_id, t.property_id, t.business_date,` + TruthSums + `
	FROM transactions t
	WHERE t.status IN ('approved', 'pending')
	  AND ($1::uuid IS NULL OR t.org_id = $1)
	  AND ($2::uuid IS NULL OR t.property_id = $2)
	GROUP BY t.org_id, t.property_id, t.business_date
	ORDER BY t.org_id, t.property_id, t.business_date`

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
