package domain

import (
	"encoding/json"
	"time"
)

// Event is the envelope of one state change, as stored in the event store,
// published on the bus and listed by the history API.
type Event struct {
	ID               ID              `json:"eventId"`
	Version          string          `json:"eventVersion"`
	Type             EventType       `json:"eventType"`
	OrgID            ID              `json:"orgId"`
	PropertyID       *ID             `json:"propertyId"`
	UserID           ID              `json:"userId"`
	EntityType       EntityType      `json:"entityType"`
	EntityID         ID              `json:"entityId"`
	AggregateVersion int             `json:"aggregateVersion"`
	Timestamp        time.Time       `json:"timestamp"`
	Metadata         json.RawMessage `json:"metadata"`
	// Sequence is the event's position in the store, assigned on append;
	// consumers use it to apply each event once.
	Sequence int64 `json:"sequence,omitempty"`
}

// TransactionState is a revenue's or an expense's state as events carry it.
type TransactionState struct {
	PropertyID    ID          `json:"propertyId"`
	Status        Status      `json:"status"`
	AmountCents   int64       `json:"amountCents"`
	Currency      string      `json:"currency"`
	PaymentMode   PaymentMode `json:"paymentMode"`
	BusinessDate  Date        `json:"businessDate"`
	Source        string      `json:"source,omitempty"`
	Category      string      `json:"category,omitempty"`
	Description   string      `json:"description,omitempty"`
	BankReference string      `json:"bankReference,omitempty"`
	// OccurredAt is the row's occurredAt (RFC 3339, UTC); events written
	// before it was carried lack it (zero).
	OccurredAt time.Time `json:"occurredAt,omitzero"`
}

// TransactionMetadata is the metadata of the ten revenue and expense
// events: the state after the change, the state before it (nil for an
// add), and the report dates the change touches.
type TransactionMetadata struct {
	TransactionState
	Previous            *TransactionState `json:"previous,omitempty"`
	AffectedReportDates []Date            `json:"affectedReportDates"`
	Notes               string            `json:"notes,omitempty"`
}

// DailyApprovalMetadata is the metadata of daily_approval_granted.
type DailyApprovalMetadata struct {
	ManagerUserID ID   `json:"managerUserId"`
	Date          Date `json:"date"`
}

// CashCountMetadata is the metadata of cash_balance_updated: the counted
// closing cash of a property's day, and the count it replaced.
type CashCountMetadata struct {
	Date                Date               `json:"date"`
	CountedClosingCents int64              `json:"countedClosingCents"`
	Previous            *CashCountPrevious `json:"previous,omitempty"`
	AffectedReportDates []Date             `json:"affectedReportDates"`
}

// CashCountPrevious is the count a cash_balance_updated event replaced.
type CashCountPrevious struct {
	CountedClosingCents int64 `json:"countedClosingCents"`
}
