package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"hmp/internal/domain"
)

// Flows are the money movements of one property over a day or a month;
// the type lives in domain so that finance's truth and this projection are
// one type (reconcile compares them field by field).
type Flows = domain.Flows

// contribution is what one revenue or expense in a given state adds to its
// day: nothing unless approved or pending.
func contribution(kind domain.Kind, s domain.TransactionState) Flows {
	var f Flows
	var target *int64
	switch s.Status {
	case domain.Approved:
		f.ApprovedCount = 1
		target = pick(&f.CashReceived, &f.BankReceived, &f.CashExpenses, &f.BankExpenses, kind, s.PaymentMode)
	case domain.Pending:
		f.PendingCount = 1
		target = pick(&f.PendingCashReceived, &f.PendingBankReceived, &f.PendingCashExpenses, &f.PendingBankExpenses, kind, s.PaymentMode)
	default:
		return Flows{}
	}
	*target = s.AmountCents
	return f
}

func pick(cashIn, bankIn, cashOut, bankOut *int64, kind domain.Kind, mode domain.PaymentMode) *int64 {
	switch {
	case kind == domain.Revenue && mode == domain.Cash:
		return cashIn
	case kind == domain.Revenue:
		return bankIn
	case mode == domain.Cash:
		return cashOut
	default:
		return bankOut
	}
}

// dayKey names one daily row.
type dayKey struct {
	org, property domain.ID
	date          domain.Date
}

// change is one event's effect on one daily row.
type change struct {
	key   dayKey
	flows Flows
	// counted is set by a cash count: the counted closing cash and the
	// count's version (the newest version wins).
	counted        *int64
	countedVersion int
}

// errPoison marks an event that can never be applied: it goes to the
// dead-letter stream at once instead of being retried.
var errPoison = errors.New("poison event")

func poison(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errPoison, fmt.Sprintf(format, args...))
}

// wireMeta is the union of the metadata shapes the projector reads: a
// revenue's or expense's state (and the one before it), or a cash count.
type wireMeta struct {
	domain.TransactionState
	Previous            *domain.TransactionState `json:"previous"`
	Date                domain.Date              `json:"date"`
	CountedClosingCents int64                    `json:"countedClosingCents"`
}

// wireEvent is an event as the projector decodes it: the envelope and its
// metadata in one pass.
type wireEvent struct {
	ID               domain.ID         `json:"eventId"`
	Type             domain.EventType  `json:"eventType"`
	OrgID            domain.ID         `json:"orgId"`
	PropertyID       *domain.ID        `json:"propertyId"`
	EntityType       domain.EntityType `json:"entityType"`
	AggregateVersion int               `json:"aggregateVersion"`
	Timestamp        time.Time         `json:"timestamp"`
	Sequence         int64             `json:"sequence"`
	Metadata         wireMeta          `json:"metadata"`
}

// decode reads one message into its event and its effect on the rows; a
// message that can never be applied is a poison error.
func decode(data []byte) (domain.Event, []change, error) {
	var w wireEvent
	if !decodeFast(data, &w) {
		w = wireEvent{}
		if err := json.Unmarshal(data, &w); err != nil {
			return domain.Event{}, nil, poison("undecodable event: %v", err)
		}
	}
	ev := domain.Event{ID: w.ID, Version: domain.EventVersion, Type: w.Type, OrgID: w.OrgID, PropertyID: w.PropertyID,
		EntityType: w.EntityType, AggregateVersion: w.AggregateVersion, Timestamp: w.Timestamp, Sequence: w.Sequence}
	eff, err := effects(ev, &w.Metadata)
	return ev, eff, err
}

// changes returns the effect of ev (its metadata still encoded) on the
// daily rows, or a poison error if ev is malformed.
func changes(ev domain.Event) ([]change, error) {
	var md wireMeta
	if err := json.Unmarshal(ev.Metadata, &md); err != nil {
		return nil, poison("event metadata: %v", err)
	}
	return effects(ev, &md)
}

// effects returns the effect of ev with its decoded metadata md.
func effects(ev domain.Event, md *wireMeta) ([]change, error) {
	if !ev.Type.Valid() {
		return nil, poison("unknown event type %q", ev.Type)
	}
	if ev.OrgID.IsZero() || ev.Sequence <= 0 {
		return nil, poison("event %s lacks an organization or a sequence", ev.ID)
	}
	switch ev.Type {
	case domain.DailyApprovalGranted:
		return nil, nil
	case domain.CashBalanceUpdated:
		if ev.PropertyID == nil || md.Date.IsZero() || md.CountedClosingCents < 0 || md.CountedClosingCents > domain.MaxAmountCents ||
			ev.AggregateVersion < 1 || ev.AggregateVersion > math.MaxInt32 {
			return nil, poison("cash count event %s is incomplete", ev.ID)
		}
		v := md.CountedClosingCents
		return []change{{key: dayKey{ev.OrgID, *ev.PropertyID, md.Date}, counted: &v, countedVersion: ev.AggregateVersion}}, nil
	}
	kind := domain.Kind(ev.EntityType)
	if !kind.Valid() || !matchesKind(ev.Type, kind) {
		return nil, poison("event type %s does not fit entity type %s", ev.Type, ev.EntityType)
	}
	out := make([]change, 0, 2)
	add := func(s domain.TransactionState, sign int64) error {
		if s.PropertyID.IsZero() && ev.PropertyID != nil {
			s.PropertyID = *ev.PropertyID
		}
		switch s.Status {
		case domain.Approved, domain.Pending:
		case domain.Rejected, domain.Deleted:
			return nil
		default:
			return poison("unknown status %q", s.Status)
		}
		if s.PropertyID.IsZero() || s.BusinessDate.IsZero() || !s.PaymentMode.Valid() || s.AmountCents < 1 || s.AmountCents > domain.MaxAmountCents {
			return poison("event %s carries an incomplete row state", ev.ID)
		}
		f := Flows{}
		f.Add(contribution(kind, s), sign)
		out = append(out, change{key: dayKey{ev.OrgID, s.PropertyID, s.BusinessDate}, flows: f})
		return nil
	}
	if err := add(md.TransactionState, +1); err != nil {
		return nil, err
	}
	// An add has no state before it; every other change has one, or its
	// effect would count the row a second time.
	added := ev.Type == domain.TransactionEvent(kind, domain.ActionAdded)
	switch {
	case md.Previous != nil && added:
		return nil, poison("event %s adds a row but carries a previous state", ev.ID)
	case md.Previous != nil:
		if err := add(*md.Previous, -1); err != nil {
			return nil, err
		}
	case !added:
		return nil, poison("event %s changes a row but carries no previous state", ev.ID)
	}
	return out, nil
}

func matchesKind(t domain.EventType, k domain.Kind) bool {
	for _, a := range []domain.Action{domain.ActionAdded, domain.ActionUpdated, domain.ActionDeleted, domain.ActionApproved, domain.ActionRejected} {
		if t == domain.TransactionEvent(k, a) {
			return true
		}
	}
	return false
}
