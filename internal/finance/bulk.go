package finance

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// Bulk loading (hmp seed) writes the rows of this package's tables through
// COPY. The helpers below produce exactly the rows and events the write
// path above would have written, so that a seeded history is
// indistinguishable from one entered through the API.

// BulkColumns are the columns of the transactions table, in the order of
// BulkRow's values.
var BulkColumns = []string{"org_id", "id", "kind", "property_id", "source", "category", "amount_cents", "currency",
	"payment_mode", "occurred_at", "business_date", "bank_reference", "description", "status", "version",
	"created_by", "created_at", "updated_by", "updated_at", "reviewed_by", "reviewed_at", "review_notes"}

// BulkRow returns the transactions row of t, for BulkColumns.
func BulkRow(t *Transaction) []any {
	var reviewedBy pgtype.UUID
	if t.ReviewedBy != nil {
		reviewedBy = pgtype.UUID{Bytes: *t.ReviewedBy, Valid: true}
	}
	var reviewedAt pgtype.Timestamptz
	if t.ReviewedAt != nil {
		reviewedAt = pgtype.Timestamptz{Time: *t.ReviewedAt, Valid: true}
	}
	return []any{uuid(t.OrgID), uuid(t.ID), string(t.Kind), uuid(t.PropertyID), null(t.Source), null(t.Category),
		t.AmountCents, t.Currency, string(t.PaymentMode), t.OccurredAt, t.BusinessDate.Time(), null(t.BankReference),
		null(t.Description), string(t.Status), int32(t.Version), uuid(t.CreatedBy), t.CreatedAt, uuid(t.UpdatedBy),
		t.UpdatedAt, reviewedBy, reviewedAt, null(t.ReviewNotes)}
}

// BulkEvent returns the event the write path appends when actor applies
// action to a row, leaving it as t (prev: the row before, nil for an add),
// at time at. id is the event's id (a seeded history chooses its ids so
// that it is repeatable).
func BulkEvent(id domain.ID, actor domain.Actor, action domain.Action, t Transaction, prev *Transaction, at time.Time, notes string) (domain.Event, error) {
	ev, err := transactionEvent(actor, action, t, prev, at, notes)
	if err != nil {
		return domain.Event{}, err
	}
	ev.ID = id
	return ev, nil
}

// DailyApprovalColumns are the columns of the daily_approvals table, in
// the order of DailyApprovalRow's values.
var DailyApprovalColumns = []string{"org_id", "manager_user_id", "date", "id", "granted_by", "granted_at"}

// DailyApprovalRow returns the daily_approvals row of a in org.
func DailyApprovalRow(org domain.ID, a DailyApproval) []any {
	return []any{uuid(org), uuid(a.ManagerUserID), a.Date.Time(), uuid(a.ID), uuid(a.GrantedBy), a.GrantedAt}
}

// DailyApprovalEvent returns the daily_approval_granted event of a in org
// (eventID: the event's id), as GrantDailyApproval appends it.
func DailyApprovalEvent(eventID, org domain.ID, a DailyApproval) (domain.Event, error) {
	md, err := json.Marshal(domain.DailyApprovalMetadata{ManagerUserID: a.ManagerUserID, Date: a.Date})
	if err != nil {
		return domain.Event{}, fmt.Errorf("encode event metadata: %w", err)
	}
	return domain.Event{ID: eventID, Version: domain.EventVersion, Type: domain.DailyApprovalGranted,
		OrgID: org, UserID: a.GrantedBy, EntityType: domain.EntityDailyApproval, EntityID: a.ID,
		AggregateVersion: 1, Timestamp: a.GrantedAt, Metadata: md}, nil
}

func uuid(id domain.ID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// RecountVolume sets every organization's gross volume (org_volume_slots)
// from its events, as the volume migration does: a bulk load that wrote
// events directly calls it afterwards, so the volume cap still bounds every
// report figure of the loaded organizations.
func RecountVolume(ctx context.Context, db *pgxpool.Pool) error {
	_, err := db.Exec(ctx, `
		INSERT INTO org_volume_slots (org_id, slot, gross_cents)
		SELECT v.org_id, g, LEAST(ceil(v.total / 16), 250000000000000000)::bigint
		FROM (SELECT org_id, sum((metadata->>'amountCents')::numeric) AS total
		      FROM events
		      WHERE event_type IN ('revenue_added', 'revenue_updated', 'revenue_approved',
		                           'expense_added', 'expense_updated', 'expense_approved')
		      GROUP BY org_id) v
		CROSS JOIN generate_series(0, 15) g
		ON CONFLICT (org_id, slot) DO UPDATE SET gross_cents = EXCLUDED.gross_cents`)
	if err != nil {
		return fmt.Errorf("recount organization volume: %w", postgres.Translate(err))
	}
	return nil
}

// CashCountColumns are the columns of the cash_counts table, in the order
// of CashCountRow's values.
var CashCountColumns = []string{"org_id", "property_id", "date", "counted_closing_cents", "version", "counted_by", "counted_at"}

// CashCountRow returns the cash_counts row of c in org.
func CashCountRow(org domain.ID, c CashCount) []any {
	return []any{uuid(org), uuid(c.PropertyID), c.Date.Time(), c.CountedClosingCents, int32(c.Version), uuid(c.CountedBy), c.CountedAt}
}

// CashCountEvent returns the cash_balance_updated event RecordCashCount
// appends for c in org (eventID: the event's id; previous: the count c
// replaced, nil for the day's first).
func CashCountEvent(eventID, org domain.ID, c CashCount, previous *int64) (domain.Event, error) {
	md := domain.CashCountMetadata{Date: c.Date, CountedClosingCents: c.CountedClosingCents, AffectedReportDates: []domain.Date{c.Date}}
	if previous != nil {
		md.Previous = &domain.CashCountPrevious{CountedClosingCents: *previous}
	}
	raw, err := json.Marshal(md)
	if err != nil {
		return domain.Event{}, fmt.Errorf("encode event metadata: %w", err)
	}
	pid := c.PropertyID
	return domain.Event{ID: eventID, Version: domain.EventVersion, Type: domain.CashBalanceUpdated, OrgID: org,
		PropertyID: &pid, UserID: c.CountedBy, EntityType: domain.EntityCashBalance,
		EntityID: CashCountID(org, c.PropertyID, c.Date), AggregateVersion: c.Version, Timestamp: c.CountedAt, Metadata: raw}, nil
}
