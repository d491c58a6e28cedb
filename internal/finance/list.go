package finance

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// ListFilter selects rows; zero fields do not filter.
type ListFilter struct {
	PropertyID domain.ID
	StartDate  domain.Date
	EndDate    domain.Date
	Status     domain.Status
	// Limit is the page size, 1..500; default 50.
	Limit int
	// Cursor continues a previous page.
	Cursor string
}

// List returns rows the actor may see, newest business date first, and the
// cursor of the next page ("" on the last page).
func (s *Service) List(ctx context.Context, actor domain.Actor, kind domain.Kind, f ListFilter) ([]Transaction, string, error) {
	v := &domain.ValidationError{}
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > 500 {
		v.Add("query.limit", "must be between 1 and 500", f.Limit)
	}
	if !f.StartDate.IsZero() && !f.EndDate.IsZero() && f.EndDate.Before(f.StartDate) {
		v.Add("query.endDate", "must not be before startDate", f.EndDate.String())
	}
	switch f.Status {
	case "", domain.Pending, domain.Approved, domain.Rejected:
	default:
		v.Add("query.status", "must be pending, approved or rejected", string(f.Status))
	}
	var afterDate *domain.Date
	var afterID *domain.ID
	if f.Cursor != "" {
		d, id, err := decodeCursor(f.Cursor)
		if err != nil {
			v.Add("query.cursor", "is not a cursor this API returned", f.Cursor)
		} else {
			afterDate, afterID = &d, &id
		}
	}
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	var property *domain.ID
	if !f.PropertyID.IsZero() {
		if _, err := s.props.Property(ctx, actor, f.PropertyID); err != nil {
			if errors.Is(err, domain.ErrNotFound) {
				return nil, "", &domain.NotFoundError{Field: "query.propertyId", Value: f.PropertyID.String(), What: "property"}
			}
			return nil, "", err
		}
		property = &f.PropertyID
	}
	var only any
	if !actor.IsAdmin() && property == nil {
		u, err := s.props.User(ctx, actor.OrgID, actor.UserID)
		if err != nil {
			return nil, "", err
		}
		only = u.PropertyIDs
	}
	var status *string
	if f.Status != "" {
		st := string(f.Status)
		status = &st
	}
	rows, err := s.pool.Query(ctx, listTx, actor.OrgID, kind, property, only,
		dateArg(f.StartDate), dateArg(f.EndDate), status, dateArgPtr(afterDate), afterID, f.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", kind, postgres.Translate(err))
	}
	items, err := pgx.CollectRows(rows, scanTx)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", kind, postgres.Translate(err))
	}
	next := ""
	if len(items) > f.Limit {
		items = items[:f.Limit]
		last := items[len(items)-1]
		next = encodeCursor(last.BusinessDate, last.ID)
	}
	return items, next, nil
}

func dateArg(d domain.Date) any {
	if d.IsZero() {
		return nil
	}
	return d.Time()
}

func dateArgPtr(d *domain.Date) any {
	if d == nil {
		return nil
	}
	return d.Time()
}

func encodeCursor(d domain.Date, id domain.ID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(d.String() + "|" + id.String()))
}

func decodeCursor(c string) (domain.Date, domain.ID, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return domain.Date{}, domain.ID{}, err
	}
	ds, is, ok := strings.Cut(string(b), "|")
	if !ok {
		return domain.Date{}, domain.ID{}, errors.New("malformed cursor")
	}
	d, err := domain.ParseDate(ds)
	if err != nil {
		return domain.Date{}, domain.ID{}, err
	}
	id, err := domain.ParseID(is)
	return d, id, err
}
