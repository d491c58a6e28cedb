package domain

// EventType names a state change. The set is closed: the projector rejects
// (dead-letters) anything else.
type EventType string

const (
	RevenueAdded         EventType = "revenue_added"
	RevenueUpdated       EventType = "revenue_updated"
	RevenueDeleted       EventType = "revenue_deleted"
	RevenueApproved      EventType = "revenue_approved"
	RevenueRejected      EventType = "revenue_rejected"
	ExpenseAdded         EventType = "expense_added"
	ExpenseUpdated       EventType = "expense_updated"
	ExpenseDeleted       EventType = "expense_deleted"
	ExpenseApproved      EventType = "expense_approved"
	ExpenseRejected      EventType = "expense_rejected"
	DailyApprovalGranted EventType = "daily_approval_granted"
	CashBalanceUpdated   EventType = "cash_balance_updated"
)

// EventTypes lists all twelve event types.
func EventTypes() []EventType {
	return []EventType{
		RevenueAdded, RevenueUpdated, RevenueDeleted, RevenueApproved, RevenueRejected,
		ExpenseAdded, ExpenseUpdated, ExpenseDeleted, ExpenseApproved, ExpenseRejected,
		DailyApprovalGranted, CashBalanceUpdated,
	}
}

// Valid reports whether t is one of the twelve event types.
func (t EventType) Valid() bool {
	for _, v := range EventTypes() {
		if v == t {
			return true
		}
	}
	return false
}

// EntityType names what an event is about.
type EntityType string

const (
	EntityRevenue       EntityType = "revenue"
	EntityExpense       EntityType = "expense"
	EntityDailyApproval EntityType = "daily_approval"
	EntityCashBalance   EntityType = "cash_balance"
)

// Valid reports whether e is a known entity type.
func (e EntityType) Valid() bool {
	switch e {
	case EntityRevenue, EntityExpense, EntityDailyApproval, EntityCashBalance:
		return true
	}
	return false
}

// Action is the verb part of a revenue or expense event type.
type Action string

const (
	ActionAdded    Action = "added"
	ActionUpdated  Action = "updated"
	ActionDeleted  Action = "deleted"
	ActionApproved Action = "approved"
	ActionRejected Action = "rejected"
)

// TransactionEvent returns the event type for an action on a kind, e.g.
// (Expense, ActionApproved) -> expense_approved.
func TransactionEvent(k Kind, a Action) EventType { return EventType(string(k) + "_" + string(a)) }

// EventVersion is the envelope version every event carries.
const EventVersion = "v1"
