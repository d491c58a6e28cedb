package finance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
	"hmp/internal/tenancy"
)

// Create records a revenue or an expense. An ADMIN's row is approved at
// once; a MANAGER's is pending, and a MANAGER must first pass the daily
// approval gate.
func (s *Service) Create(ctx context.Context, actor domain.Actor, kind domain.Kind, in CreateInput) (Transaction, Written, error) {
	now := s.now().UTC()
	prop, err := s.referencedProperty(ctx, actor, in.PropertyID)
	if err != nil {
		return Transaction{}, Written{}, err
	}
	t := Transaction{
		OrgID: actor.OrgID, ID: domain.NewID(now), Kind: kind, PropertyID: in.PropertyID,
		Source: in.Source, Category: in.Category, AmountCents: in.AmountCents, PaymentMode: in.PaymentMode,
		OccurredAt: in.OccurredAt.UTC().Truncate(time.Microsecond), BankReference: deref(in.BankReference), Description: deref(in.Description),
		Status: domain.Approved, Version: 1, CreatedBy: actor.UserID, CreatedAt: now, UpdatedBy: actor.UserID, UpdatedAt: now,
	}
	if err := validate(kind, &t, now); err != nil {
		return Transaction{}, Written{}, err
	}
	t.Currency = prop.Currency
	t.BusinessDate = domain.BusinessDate(t.OccurredAt, prop.Location)
	if actor.Role == domain.Manager {
		t.Status = domain.Pending
		if err := s.checkGate(ctx, actor, prop, now); err != nil {
			return Transaction{}, Written{}, err
		}
	} else {
		t.ReviewedBy = &actor.UserID
	}
	// The change's time is taken under the chain head, where its place in
	// the event order is (eventstore.Stamp); concurrent creates of the
	// organization share the transaction (group.go).
	p := &pendingCreate{ctx: ctx, actor: actor, t: t, done: make(chan []*pendingCreate, 1)}
	if err := s.commitCreate(p); err != nil {
		return Transaction{}, Written{}, err
	}
	return p.t, Written{Token: domain.Token{TxID: p.pos.TxID}}, nil
}

// Get returns one row the actor may see.
func (s *Service) Get(ctx context.Context, actor domain.Actor, kind domain.Kind, id domain.ID) (Transaction, error) {
	t, err := loadTx(ctx, s.pool, selectTx, actor.OrgID, id, kind)
	if err != nil {
		return Transaction{}, err
	}
	if err := s.checkRowAccess(ctx, actor, t); err != nil {
		return Transaction{}, err
	}
	return t, nil
}

// UpdateIf applies a patch. A MANAGER's edit puts the row back to pending;
// an ADMIN's leaves the status. A rejected row cannot be edited
// (ErrConflict). A patch that changes nothing writes nothing; for a
// MANAGER, sending a row back to approval is itself the change. A row
// that no longer satisfies pre is ErrPreconditionFailed (after the access
// check: another tenant's row stays not found).
func (s *Service) UpdateIf(ctx context.Context, actor domain.Actor, kind domain.Kind, id domain.ID, p PatchInput, pre Precondition) (Transaction, Written, error) {
	now := s.now().UTC()
	var (
		out Transaction
		w   Written
	)
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		old, err := loadTx(ctx, tx, selectTxForUpdate, actor.OrgID, id, kind)
		if err != nil {
			return err
		}
		if err := s.checkRowAccess(ctx, actor, old); err != nil {
			return err
		}
		if err := pre.check(old); err != nil {
			return err
		}
		if old.Status == domain.Rejected {
			return domain.Conflictf("%s %s was rejected and cannot be edited", kind, id)
		}
		t := old
		prop, err := s.applyPatch(ctx, actor, &t, p)
		if err != nil {
			return err
		}
		if err := validate(kind, &t, now); err != nil {
			return err
		}
		t.Currency = prop.Currency
		t.BusinessDate = domain.BusinessDate(t.OccurredAt, prop.Location)
		if actor.Role == domain.Manager {
			t.Status = domain.Pending
			t.ReviewedBy, t.ReviewedAt, t.ReviewNotes = nil, nil, ""
		}
		if sameContent(old, t) {
			out = old
			w, err = currentToken(ctx, tx)
			return err
		}
		at, err := eventstore.Stamp(ctx, tx, actor.OrgID, s.now)
		if err != nil {
			return err
		}
		t.Version = old.Version + 1
		t.UpdatedBy, t.UpdatedAt = actor.UserID, at
		ev, err := transactionEvent(actor, domain.ActionUpdated, t, &old, at, "")
		if err != nil {
			return err
		}
		if w, err = s.write(ctx, tx, ev, updateTx, updateArgs(&t)...); err != nil {
			return err
		}
		if err := execVolume(ctx, tx, &t); err != nil {
			return err
		}
		out = t
		return nil
	})
	return out, w, err
}

// DeleteIf removes a row. An ADMIN's delete takes effect at once (deleted is
// true); a MANAGER's creates a deletion request for an ADMIN to decide and
// writes no event (requestID is set, deleted false). A row that no longer
// satisfies pre is ErrPreconditionFailed and nothing is written or
// requested.
func (s *Service) DeleteIf(ctx context.Context, actor domain.Actor, kind domain.Kind, id domain.ID, pre Precondition) (deleted bool, requestID domain.ID, w Written, err error) {
	now := s.now().UTC()
	if actor.Role == domain.Manager {
		requestID, w, err = s.requestDeletion(ctx, actor, kind, id, now, pre)
		return false, requestID, w, err
	}
	err = s.withTx(ctx, func(tx pgx.Tx) error {
		t, err := loadTx(ctx, tx, selectTxForUpdate, actor.OrgID, id, kind)
		if err != nil {
			return err
		}
		if err := pre.check(t); err != nil {
			return err
		}
		at, err := eventstore.Stamp(ctx, tx, actor.OrgID, s.now)
		if err != nil {
			return err
		}
		w, err = s.deleteRow(ctx, tx, actor, t, at)
		if err != nil {
			return err
		}
		// A manager's pending request for this row is settled by the delete.
		_, err = tx.Exec(ctx, `
			UPDATE deletion_requests SET status = 'approved', decided_by = $3, decided_at = $4
			WHERE org_id = $1 AND transaction_id = $2 AND status = 'pending'`, actor.OrgID, id, actor.UserID, at)
		if err != nil {
			return fmt.Errorf("settle deletion requests: %w", postgres.Translate(err))
		}
		return nil
	})
	return err == nil, domain.ID{}, w, err
}

// ReviewIf approves or rejects a pending row. Only an ADMIN may
// (ErrForbidden); a row that no longer satisfies pre is
// ErrPreconditionFailed; a row that is not pending is ErrConflict.
func (s *Service) ReviewIf(ctx context.Context, actor domain.Actor, kind domain.Kind, id domain.ID, approve bool, notes string, pre Precondition) (Transaction, Written, error) {
	if !actor.IsAdmin() {
		return Transaction{}, Written{}, fmt.Errorf("%w: only an ADMIN may approve or reject", domain.ErrForbidden)
	}
	if utf8.RuneCountInString(notes) > maxDescription {
		return Transaction{}, Written{}, domain.Invalid("body.notes", fmt.Sprintf("must be at most %d characters", maxDescription), nil)
	}
	if !domain.StorableText(notes) {
		return Transaction{}, Written{}, domain.Invalid("body.notes", "must not contain NUL characters", nil)
	}
	var (
		out Transaction
		w   Written
	)
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		old, err := loadTx(ctx, tx, selectTxForUpdate, actor.OrgID, id, kind)
		if err != nil {
			return err
		}
		if err := pre.check(old); err != nil {
			return err
		}
		if old.Status != domain.Pending {
			return domain.Conflictf("%s %s is %s; only a pending row can be approved or rejected", kind, id, old.Status)
		}
		t := old
		action := domain.ActionApproved
		t.Status = domain.Approved
		if !approve {
			action, t.Status = domain.ActionRejected, domain.Rejected
		}
		at, err := eventstore.Stamp(ctx, tx, actor.OrgID, s.now)
		if err != nil {
			return err
		}
		t.Version = old.Version + 1
		t.UpdatedBy, t.UpdatedAt = actor.UserID, at
		t.ReviewedBy, t.ReviewedAt, t.ReviewNotes = &actor.UserID, &at, notes
		ev, err := transactionEvent(actor, action, t, &old, at, notes)
		if err != nil {
			return err
		}
		if w, err = s.write(ctx, tx, ev, updateTx, updateArgs(&t)...); err != nil {
			return err
		}
		if err := execVolume(ctx, tx, &t); err != nil {
			return err
		}
		out = t
		return nil
	})
	return out, w, err
}

// write runs one change statement and appends its event in tx.
func (s *Service) write(ctx context.Context, tx pgx.Tx, ev domain.Event, sql string, args ...any) (Written, error) {
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return Written{}, fmt.Errorf("write %s: %w", ev.EntityType, postgres.Translate(err))
	}
	if tag.RowsAffected() != 1 {
		return Written{}, domain.Conflictf("%s %s changed concurrently; reload and retry", ev.EntityType, ev.EntityID)
	}
	pos, err := eventstore.AppendTx(ctx, tx, ev)
	if err != nil {
		return Written{}, err
	}
	return Written{Token: domain.Token{TxID: pos.TxID}}, nil
}

// deleteRow deletes t with its event stamped at (eventstore.Stamp in tx).
func (s *Service) deleteRow(ctx context.Context, tx pgx.Tx, actor domain.Actor, t Transaction, at time.Time) (Written, error) {
	gone := t
	gone.Status = domain.Deleted
	gone.Version = t.Version + 1
	ev, err := transactionEvent(actor, domain.ActionDeleted, gone, &t, at, "")
	if err != nil {
		return Written{}, err
	}
	return s.write(ctx, tx, ev, deleteTx, t.OrgID, t.ID, t.Kind)
}

// applyPatch changes t by p and returns the (possibly new) property.
func (s *Service) applyPatch(ctx context.Context, actor domain.Actor, t *Transaction, p PatchInput) (tenancy.Property, error) {
	if p.PropertyID != nil && *p.PropertyID != t.PropertyID {
		if _, err := s.referencedProperty(ctx, actor, *p.PropertyID); err != nil {
			return tenancy.Property{}, err
		}
		t.PropertyID = *p.PropertyID
	}
	if p.Source != nil {
		t.Source = *p.Source
	}
	if p.Category != nil {
		t.Category = *p.Category
	}
	if p.AmountCents != nil {
		t.AmountCents = *p.AmountCents
	}
	if p.PaymentMode != nil {
		t.PaymentMode = *p.PaymentMode
	}
	if p.OccurredAt != nil {
		t.OccurredAt = p.OccurredAt.UTC().Truncate(time.Microsecond)
	}
	if p.BankReference != nil {
		t.BankReference = *p.BankReference
	}
	if p.Description != nil {
		t.Description = *p.Description
	}
	return s.props.PropertyByID(ctx, t.OrgID, t.PropertyID)
}

// referencedProperty resolves a property named in a request body; one the
// actor may not see is a NotFoundError naming the field.
func (s *Service) referencedProperty(ctx context.Context, actor domain.Actor, id domain.ID) (tenancy.Property, error) {
	if id.IsZero() {
		return tenancy.Property{}, domain.Invalid("body.propertyId", "is required", nil)
	}
	p, err := s.props.Property(ctx, actor, id)
	if errors.Is(err, domain.ErrNotFound) {
		return tenancy.Property{}, &domain.NotFoundError{Field: "body.propertyId", Value: id.String(), What: "property"}
	}
	return p, err
}

// checkRowAccess hides rows of properties a MANAGER is not assigned to.
func (s *Service) checkRowAccess(ctx context.Context, actor domain.Actor, t Transaction) error {
	if actor.IsAdmin() {
		return nil
	}
	if _, err := s.props.Property(ctx, actor, t.PropertyID); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return domain.NotFoundf("%s %s not found", t.Kind, t.ID)
		}
		return err
	}
	return nil
}

func sameContent(a, b Transaction) bool {
	return a.PropertyID == b.PropertyID && a.Source == b.Source && a.Category == b.Category &&
		a.AmountCents == b.AmountCents && a.Currency == b.Currency && a.PaymentMode == b.PaymentMode &&
		a.OccurredAt.Equal(b.OccurredAt) && a.BusinessDate == b.BusinessDate && a.BankReference == b.BankReference &&
		a.Description == b.Description && a.Status == b.Status
}

// currentToken returns a token for a write that changed nothing.
func currentToken(ctx context.Context, tx pgx.Tx) (Written, error) {
	var id uint64
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&id); err != nil {
		return Written{}, fmt.Errorf("read transaction id: %w", postgres.Translate(err))
	}
	return Written{Token: domain.Token{TxID: id}}, nil
}

// transactionEvent builds the event of an action on a row. prev is the
// state before the change (nil for an add).
func transactionEvent(actor domain.Actor, action domain.Action, t Transaction, prev *Transaction, now time.Time, notes string) (domain.Event, error) {
	md := domain.TransactionMetadata{TransactionState: t.State(), Notes: notes}
	md.PropertyID = t.PropertyID
	dates := []domain.Date{t.BusinessDate}
	if prev != nil {
		ps := prev.State()
		ps.PropertyID = prev.PropertyID
		md.Previous = &ps
		if prev.BusinessDate != t.BusinessDate {
			dates = []domain.Date{prev.BusinessDate, t.BusinessDate}
		}
	}
	md.AffectedReportDates = dates
	raw, err := json.Marshal(md)
	if err != nil {
		return domain.Event{}, fmt.Errorf("encode event metadata: %w", err)
	}
	pid := t.PropertyID
	return domain.Event{
		ID: domain.NewID(now), Version: domain.EventVersion, Type: domain.TransactionEvent(t.Kind, action),
		OrgID: t.OrgID, PropertyID: &pid, UserID: actor.UserID, EntityType: domain.EntityType(t.Kind), EntityID: t.ID,
		AggregateVersion: t.Version, Timestamp: now, Metadata: raw,
	}, nil
}
