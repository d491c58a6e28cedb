package finance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
)

// Fold rebuilds a revenue or an expense from its events, oldest first (as
// the event store holds them, versions 1, 2, ...). It answers the row and
// whether it exists (false once a *_deleted event folded in). The row is
// what the write path stored: each event carries the whole state after its
// change, and the envelope says who changed it when.
func Fold(events []domain.Event) (Transaction, bool, error) {
	var (
		t      Transaction
		exists bool
	)
	for i, ev := range events {
		if ev.AggregateVersion != i+1 {
			return Transaction{}, false, fmt.Errorf("fold %s %s: event %s is version %d, want %d", ev.EntityType, ev.EntityID, ev.ID, ev.AggregateVersion, i+1)
		}
		if err := apply(&t, &exists, ev); err != nil {
			return Transaction{}, false, fmt.Errorf("fold %s %s: %w", ev.EntityType, ev.EntityID, err)
		}
	}
	return t, exists, nil
}

// apply folds one event into t.
func apply(t *Transaction, exists *bool, ev domain.Event) error {
	var md domain.TransactionMetadata
	if err := json.Unmarshal(ev.Metadata, &md); err != nil {
		return fmt.Errorf("event %s: decode metadata: %w", ev.ID, err)
	}
	kind := domain.Kind(ev.EntityType)
	action, ok := actionOf(kind, ev.Type)
	if !ok {
		return fmt.Errorf("event %s: %s is not an event of a %s", ev.ID, ev.Type, kind)
	}
	if action == domain.ActionAdded {
		*exists = true
		*t = Transaction{OrgID: ev.OrgID, ID: ev.EntityID, Kind: kind, CreatedBy: ev.UserID, CreatedAt: ev.Timestamp.UTC()}
	} else if !*exists {
		return fmt.Errorf("event %s: %s of a row that does not exist", ev.ID, ev.Type)
	}
	if action == domain.ActionDeleted {
		*exists = false
		t.Version = ev.AggregateVersion
		return nil
	}
	if md.OccurredAt.IsZero() {
		return fmt.Errorf("event %s: written before events carried occurredAt; the row cannot be folded", ev.ID)
	}
	s := md.TransactionState
	t.PropertyID, t.Source, t.Category, t.AmountCents, t.Currency = s.PropertyID, s.Source, s.Category, s.AmountCents, s.Currency
	t.PaymentMode, t.OccurredAt, t.BusinessDate = s.PaymentMode, s.OccurredAt.UTC(), s.BusinessDate
	t.BankReference, t.Description, t.Status = s.BankReference, s.Description, s.Status
	t.Version = ev.AggregateVersion
	t.UpdatedBy, t.UpdatedAt = ev.UserID, ev.Timestamp.UTC()
	at, by := ev.Timestamp.UTC(), ev.UserID
	switch {
	case action == domain.ActionApproved || action == domain.ActionRejected:
		t.ReviewedBy, t.ReviewedAt, t.ReviewNotes = &by, &at, md.Notes
	case action == domain.ActionAdded && s.Status == domain.Approved:
		// An ADMIN's row is approved by its creation.
		t.ReviewedBy, t.ReviewedAt = &by, &at
	case s.Status == domain.Pending:
		// A MANAGER's edit sends the row back to approval: the review is
		// gone. (An ADMIN's edit keeps the status and the review.)
		t.ReviewedBy, t.ReviewedAt, t.ReviewNotes = nil, nil, ""
	}
	return nil
}

// actionOf maps an event type to its action on a row of kind.
func actionOf(kind domain.Kind, typ domain.EventType) (domain.Action, bool) {
	for _, a := range []domain.Action{domain.ActionAdded, domain.ActionUpdated, domain.ActionDeleted, domain.ActionApproved, domain.ActionRejected} {
		if domain.TransactionEvent(kind, a) == typ {
			return a, true
		}
	}
	return "", false
}

// Load returns a row folded from its events, and whether it exists; a row
// without events is ErrNotFound. It reads the event store only.
func (s *Service) Load(ctx context.Context, orgID domain.ID, kind domain.Kind, id domain.ID) (Transaction, bool, error) {
	events, err := eventstore.EntityEvents(ctx, s.pool, orgID, domain.EntityType(kind), id)
	if err != nil {
		return Transaction{}, false, err
	}
	if len(events) == 0 {
		return Transaction{}, false, domain.NotFoundf("%s %s not found", kind, id)
	}
	return Fold(events)
}

// FoldMismatch is a row whose fold differs from the table.
type FoldMismatch struct {
	Kind domain.Kind
	ID   domain.ID
	// Detail says what differs.
	Detail string
}

// CheckFold folds every revenue and expense of an organization that has
// events and compares the result with its table row (or its absence).
// It answers the number of entities checked and the mismatches.
func (s *Service) CheckFold(ctx context.Context, orgID domain.ID) (int, []FoldMismatch, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+txColumns+` FROM transactions WHERE org_id = $1`, orgID)
	if err != nil {
		return 0, nil, fmt.Errorf("check fold: %w", postgres.Translate(err))
	}
	table, err := pgx.CollectRows(rows, scanTx)
	if err != nil {
		return 0, nil, fmt.Errorf("check fold: %w", postgres.Translate(err))
	}
	byID := map[domain.ID]Transaction{}
	for _, t := range table {
		byID[t.ID] = t
	}
	var entities []struct {
		Type string
		ID   domain.ID
	}
	rows, err = s.pool.Query(ctx, `SELECT DISTINCT entity_type, entity_id FROM events WHERE org_id = $1 AND entity_type IN ('revenue', 'expense')`, orgID)
	if err != nil {
		return 0, nil, fmt.Errorf("check fold: %w", postgres.Translate(err))
	}
	if entities, err = pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		Type string
		ID   domain.ID
	}]); err != nil {
		return 0, nil, fmt.Errorf("check fold: %w", postgres.Translate(err))
	}
	var out []FoldMismatch
	seen := map[domain.ID]bool{}
	for _, e := range entities {
		kind := domain.Kind(e.Type)
		seen[e.ID] = true
		folded, exists, err := s.Load(ctx, orgID, kind, e.ID)
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			out = append(out, FoldMismatch{Kind: kind, ID: e.ID, Detail: err.Error()})
			continue
		}
		row, inTable := byID[e.ID]
		switch {
		case exists != inTable:
			out = append(out, FoldMismatch{Kind: kind, ID: e.ID, Detail: fmt.Sprintf("fold says exists=%v, the table %v", exists, inTable)})
		case exists:
			if d := diff(folded, row); d != "" {
				out = append(out, FoldMismatch{Kind: kind, ID: e.ID, Detail: d})
			}
		}
	}
	for _, t := range table {
		if !seen[t.ID] {
			out = append(out, FoldMismatch{Kind: t.Kind, ID: t.ID, Detail: "a row without events"})
		}
	}
	return len(entities), out, nil
}

// nextFoldOrg is the least organization after $1 (NULL: the first) with
// transactions or revenue and expense events: loose index scans, one probe
// each per organization.
const nextFoldOrg = `
	SELECT org_id FROM (SELECT LEAST(
		(SELECT org_id FROM transactions WHERE $1::uuid IS NULL OR org_id > $1 ORDER BY org_id LIMIT 1),
		(SELECT org_id FROM events WHERE $1::uuid IS NULL OR org_id > $1 ORDER BY org_id LIMIT 1)) AS org_id) n
	WHERE org_id IS NOT NULL`

// OrgFold is one organization's CheckFold.
type OrgFold struct {
	OrgID      domain.ID      `json:"orgId"`
	Checked    int            `json:"checked"`
	Mismatches []FoldMismatch `json:"mismatches"`
}

// CheckFolds runs CheckFold for org, or (zero) for every organization with
// transactions or events, and answers the organizations that have a
// mismatch and the number of entities checked. The events are the record:
// a mismatch is a transactions row that is not the fold of its events.
func (s *Service) CheckFolds(ctx context.Context, org domain.ID) (int, []OrgFold, error) {
	var (
		checked int
		bad     []OrgFold
		after   *domain.ID
	)
	for {
		next := org
		if org.IsZero() {
			err := s.pool.QueryRow(ctx, nextFoldOrg, after).Scan(&next)
			if errors.Is(err, pgx.ErrNoRows) {
				return checked, bad, nil
			}
			if err != nil {
				return checked, bad, fmt.Errorf("check folds: next organization: %w", postgres.Translate(err))
			}
		}
		n, mm, err := s.CheckFold(ctx, next)
		if err != nil {
			return checked, bad, err
		}
		checked += n
		if len(mm) > 0 {
			bad = append(bad, OrgFold{OrgID: next, Checked: n, Mismatches: mm})
		}
		if !org.IsZero() {
			return checked, bad, nil
		}
		after = &next
	}
}

// diff names the first fields where a and b differ ("" when equal).
func diff(a, b Transaction) string {
	type field struct {
		name string
		x, y any
	}
	ts := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	id := func(p *domain.ID) any {
		if p == nil {
			return nil
		}
		return *p
	}
	fields := []field{
		{"orgId", a.OrgID, b.OrgID}, {"kind", a.Kind, b.Kind}, {"propertyId", a.PropertyID, b.PropertyID},
		{"source", a.Source, b.Source}, {"category", a.Category, b.Category}, {"amountCents", a.AmountCents, b.AmountCents},
		{"currency", a.Currency, b.Currency}, {"paymentMode", a.PaymentMode, b.PaymentMode},
		{"occurredAt", ts(&a.OccurredAt), ts(&b.OccurredAt)}, {"businessDate", a.BusinessDate, b.BusinessDate},
		{"bankReference", a.BankReference, b.BankReference}, {"description", a.Description, b.Description},
		{"status", a.Status, b.Status}, {"version", a.Version, b.Version}, {"createdBy", a.CreatedBy, b.CreatedBy},
		{"createdAt", ts(&a.CreatedAt), ts(&b.CreatedAt)}, {"updatedBy", a.UpdatedBy, b.UpdatedBy},
		{"updatedAt", ts(&a.UpdatedAt), ts(&b.UpdatedAt)}, {"reviewedBy", id(a.ReviewedBy), id(b.ReviewedBy)},
		{"reviewedAt", ts(a.ReviewedAt), ts(b.ReviewedAt)}, {"reviewNotes", a.ReviewNotes, b.ReviewNotes},
	}
	out := ""
	for _, f := range fields {
		if f.x != f.y {
			out += fmt.Sprintf("%s: fold %v, table %v; ", f.name, f.x, f.y)
		}
	}
	return out
}
