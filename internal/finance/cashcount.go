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

// CashCount is the physically counted cash of a property at a day's end.
// This package owns the cash_counts table and writes it; reports folds the
// counts' events into the cash book, and reconcile reads the table.
type CashCount struct {
	PropertyID          domain.ID
	Date                domain.Date
	CountedClosingCents int64
	// Version counts the counts of that day: a later count replaces the
	// earlier one and is its next version.
	Version   int
	CountedBy domain.ID
	CountedAt time.Time
}

// CashCountID is the entity id of a property's count on a date: the same
// for every version of it.
func CashCountID(org, property domain.ID, date domain.Date) domain.ID {
	// The namespace scopes the ids of cash count entities.
	ns := domain.ID{0x6a, 0x1d, 0x3c, 0x55, 0x0e, 0x44, 0x4b, 0x39, 0x9a, 0x35, 0x55, 0x2e, 0x7f, 0x80, 0x11, 0x21}
	return domain.NameID(ns, org.String()+"/"+property.String()+"/"+date.String())
}

// RecordCashCount records (or replaces) the counted closing cash of a day:
// a write, with its cash_balance_updated event in the same commit.
// An ADMIN, or a MANAGER of the property, may.
func (s *Service) RecordCashCount(ctx context.Context, actor domain.Actor, propertyID domain.ID, date domain.Date, counted int64) (CashCount, Written, error) {
	now := s.now()
	v := &domain.ValidationError{}
	if counted < 0 || counted > domain.MaxAmountCents {
		v.Add("body.countedClosingCents", "must be between 0 and 1000000000000000", counted)
	}
	if err := domain.CheckReportDate(date, domain.DateOf(now)); err != nil {
		v.Add("body.date", err.Error(), date.String())
	}
	if err := v.Err(); err != nil {
		return CashCount{}, Written{}, err
	}
	if _, err := s.props.Property(ctx, actor, propertyID); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return CashCount{}, Written{}, &domain.NotFoundError{Field: "body.propertyId", Value: propertyID.String(), What: "property"}
		}
		return CashCount{}, Written{}, err
	}
	c := CashCount{PropertyID: propertyID, Date: date, CountedClosingCents: counted, CountedBy: actor.UserID}
	var w Written
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		// Counts of one day serialize here: the first count of a day has no
		// row to lock yet, and two of them must become versions 1 and 2.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
			"cash_count/"+CashCountID(actor.OrgID, propertyID, date).String()); err != nil {
			return fmt.Errorf("lock cash count: %w", postgres.Translate(err))
		}
		var prev *int64
		var version int
		err := tx.QueryRow(ctx, `
			SELECT counted_closing_cents, version FROM cash_counts
			WHERE org_id = $1 AND property_id = $2 AND date = $3 FOR UPDATE`, actor.OrgID, propertyID, date.Time()).Scan(&prev, &version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("load cash count: %w", postgres.Translate(err))
		}
		c.Version = version + 1
		// The count's time is taken under the chain head, where its place
		// in the event order is (eventstore.Stamp).
		at, err := eventstore.Stamp(ctx, tx, actor.OrgID, s.now)
		if err != nil {
			return err
		}
		c.CountedAt = at
		_, err = tx.Exec(ctx, `
			INSERT INTO cash_counts (org_id, property_id, date, counted_closing_cents, version, counted_by, counted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (org_id, property_id, date) DO UPDATE SET counted_closing_cents = EXCLUDED.counted_closing_cents,
				version = EXCLUDED.version, counted_by = EXCLUDED.counted_by, counted_at = EXCLUDED.counted_at`,
			actor.OrgID, propertyID, date.Time(), counted, c.Version, actor.UserID, at)
		if err != nil {
			return fmt.Errorf("store cash count: %w", postgres.Translate(err))
		}
		md := domain.CashCountMetadata{Date: date, CountedClosingCents: counted, AffectedReportDates: []domain.Date{date}}
		if prev != nil {
			md.Previous = &domain.CashCountPrevious{CountedClosingCents: *prev}
		}
		raw, err := json.Marshal(md)
		if err != nil {
			return fmt.Errorf("encode event metadata: %w", err)
		}
		pid := propertyID
		pos, err := eventstore.AppendTx(ctx, tx, domain.Event{
			ID: domain.NewID(at), Version: domain.EventVersion, Type: domain.CashBalanceUpdated, OrgID: actor.OrgID,
			PropertyID: &pid, UserID: actor.UserID, EntityType: domain.EntityCashBalance,
			EntityID: CashCountID(actor.OrgID, propertyID, date), AggregateVersion: c.Version, Timestamp: at, Metadata: raw,
		})
		if err != nil {
			return err
		}
		w.Token = domain.Token{TxID: pos.TxID}
		return nil
	})
	if err != nil {
		return CashCount{}, Written{}, err
	}
	return c, w, nil
}
