package finance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// The SQL of the transactions table. Optional filters are fixed fragments
// with parameters; nothing is built from request data.
const (
	txColumns = `org_id, id, kind, property_id, COALESCE(source, ''), COALESCE(category, ''), amount_cents,
	currency, payment_mode, occurred_at, business_date, COALESCE(bank_reference, ''), COALESCE(description, ''),
	status, version, created_by, created_at, updated_by, updated_at, reviewed_by, reviewed_at, COALESCE(review_notes, '')`

	insertTx = `
	INSERT INTO transactions (org_id, id, kind, property_id, source, category, amount_cents, currency,
		payment_mode, occurred_at, business_date, bank_reference, description, status, version,
		created_by, created_at, updated_by, updated_at, reviewed_by, reviewed_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $16, $17, $18, $19)`

	selectTx = `SELECT ` + txColumns + ` FROM transactions WHERE org_id = $1 AND id = $2 AND kind = $3`

	selectTxForUpdate = selectTx + ` FOR UPDATE`

	updateTx = `
	UPDATE transactions SET property_id = $4, source = $5, category = $6, amount_cents = $7, currency = $8,
		payment_mode = $9, occurred_at = $10, business_date = $11, bank_reference = $12, description = $13,
		status = $14, version = $15, updated_by = $16, updated_at = $17, reviewed_by = $18, reviewed_at = $19,
		review_notes = $20
	WHERE org_id = $1 AND id = $2 AND kind = $3`

	deleteTx = `DELETE FROM transactions WHERE org_id = $1 AND id = $2 AND kind = $3`

	listTx = `SELECT ` + txColumns + ` FROM transactions
	WHERE org_id = $1 AND kind = $2
	  AND ($3::uuid IS NULL OR property_id = $3)
	  AND ($4::uuid[] IS NULL OR property_id = ANY ($4))
	  AND ($5::date IS NULL OR business_date >= $5)
	  AND ($6::date IS NULL OR business_date <= $6)
	  AND ($7::text IS NULL OR status = $7)
	  AND ($8::date IS NULL OR (business_date, id) < ($8, $9::uuid))
	ORDER BY business_date DESC, id DESC
	LIMIT $10`

	// The oldest pending row a manager created, per property: the gate
	// compares its day with today in that property's zone.
	oldestPending = `
	SELECT property_id, min(created_at) FROM transactions
	WHERE org_id = $1 AND created_by = $2 AND status = 'pending'
	GROUP BY property_id`

	hasDailyApproval = `SELECT EXISTS (SELECT 1 FROM daily_approvals WHERE org_id = $1 AND manager_user_id = $2 AND date = $3)`
)

func insertArgs(t *Transaction) []any {
	return []any{t.OrgID, t.ID, t.Kind, t.PropertyID, null(t.Source), null(t.Category), t.AmountCents, t.Currency,
		t.PaymentMode, t.OccurredAt, t.BusinessDate.Time(), null(t.BankReference), null(t.Description), t.Status, t.Version,
		t.CreatedBy, t.CreatedAt, t.ReviewedBy, t.ReviewedAt}
}

func updateArgs(t *Transaction) []any {
	return []any{t.OrgID, t.ID, t.Kind, t.PropertyID, null(t.Source), null(t.Category), t.AmountCents, t.Currency,
		t.PaymentMode, t.OccurredAt, t.BusinessDate.Time(), null(t.BankReference), null(t.Description), t.Status, t.Version,
		t.UpdatedBy, t.UpdatedAt, t.ReviewedBy, t.ReviewedAt, null(t.ReviewNotes)}
}

func null(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func scanTx(row pgx.CollectableRow) (Transaction, error) {
	var (
		t  Transaction
		bd time.Time
	)
	err := row.Scan(&t.OrgID, &t.ID, &t.Kind, &t.PropertyID, &t.Source, &t.Category, &t.AmountCents,
		&t.Currency, &t.PaymentMode, &t.OccurredAt, &bd, &t.BankReference, &t.Description,
		&t.Status, &t.Version, &t.CreatedBy, &t.CreatedAt, &t.UpdatedBy, &t.UpdatedAt, &t.ReviewedBy, &t.ReviewedAt, &t.ReviewNotes)
	t.BusinessDate = domain.DateOf(bd)
	return t, err
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadTx reads one row of the organization and kind; ErrNotFound when
// there is none.
func loadTx(ctx context.Context, q querier, sql string, orgID, id domain.ID, kind domain.Kind) (Transaction, error) {
	rows, err := q.Query(ctx, sql, orgID, id, kind)
	if err != nil {
		return Transaction{}, fmt.Errorf("load %s: %w", kind, postgres.Translate(err))
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanTx)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Transaction{}, domain.NotFoundf("%s %s not found", kind, id)
		}
		return Transaction{}, fmt.Errorf("load %s: %w", kind, postgres.Translate(err))
	}
	return t, nil
}
