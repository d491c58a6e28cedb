package finance

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"hmp/internal/domain"
)

// CreateInput is the body of a create. Source belongs to revenues,
// Category to expenses.
type CreateInput struct {
	PropertyID    domain.ID
	Source        string
	Category      string
	AmountCents   int64
	PaymentMode   domain.PaymentMode
	OccurredAt    time.Time
	BankReference *string
	Description   *string
}

// PatchInput changes any of the create fields; nil leaves a field alone.
type PatchInput struct {
	PropertyID    *domain.ID
	Source        *string
	Category      *string
	AmountCents   *int64
	PaymentMode   *domain.PaymentMode
	OccurredAt    *time.Time
	BankReference *string
	Description   *string
}

const (
	maxCategory    = 100
	maxDescription = 1000
	maxReference   = 100
)

// validate checks a complete row (after a create or a patch is applied) and
// reports every bad field.
func validate(kind domain.Kind, t *Transaction, now time.Time) error {
	v := &domain.ValidationError{}
	if t.PropertyID.IsZero() {
		v.Add("body.propertyId", "is required", nil)
	}
	switch kind {
	case domain.Revenue:
		if !domain.ValidRevenueSource(t.Source) {
			v.Add("body.source", "must be one of room, addon, other", t.Source)
		}
		if t.Category != "" {
			v.Add("body.category", "belongs to expenses, not revenues", t.Category)
		}
	case domain.Expense:
		t.Category = strings.TrimSpace(t.Category)
		switch {
		case t.Category == "":
			v.Add("body.category", "is required and must not be blank", nil)
		case utf8.RuneCountInString(t.Category) > maxCategory:
			v.Add("body.category", fmt.Sprintf("must be at most %d characters", maxCategory), nil)
		}
		if t.Source != "" {
			v.Add("body.source", "belongs to revenues, not expenses", t.Source)
		}
	}
	if t.AmountCents < 1 || t.AmountCents > domain.MaxAmountCents {
		v.Add("body.amountCents", "must be between 1 and 1000000000000000", t.AmountCents)
	}
	if !t.PaymentMode.Valid() {
		v.Add("body.paymentMode", "must be cash or bank", string(t.PaymentMode))
	}
	if t.OccurredAt.IsZero() {
		v.Add("body.occurredAt", "is required", nil)
	} else if err := domain.CheckOccurredAt(t.OccurredAt, now); err != nil {
		v.Add("body.occurredAt", err.Error(), t.OccurredAt.Format(time.RFC3339))
	}
	if utf8.RuneCountInString(t.Description) > maxDescription {
		v.Add("body.description", fmt.Sprintf("must be at most %d characters", maxDescription), nil)
	}
	if utf8.RuneCountInString(t.BankReference) > maxReference {
		v.Add("body.bankReference", fmt.Sprintf("must be at most %d characters", maxReference), nil)
	}
	for _, f := range []struct{ field, text string }{
		{"body.category", t.Category}, {"body.description", t.Description}, {"body.bankReference", t.BankReference},
	} {
		if !domain.StorableText(f.text) {
			v.Add(f.field, "must not contain NUL characters", nil)
		}
	}
	return v.Err()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
