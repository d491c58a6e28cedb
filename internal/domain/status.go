package domain

// Role is what a user may do inside their organization.
type Role string

const (
	// Admin manages users and properties and approves what managers enter.
	Admin Role = "ADMIN"
	// Manager enters rows for the properties assigned to them.
	Manager Role = "MANAGER"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == Admin || r == Manager }

// Status is the approval state of a revenue or an expense.
type Status string

const (
	Pending  Status = "pending"
	Approved Status = "approved"
	Rejected Status = "rejected"
	// Deleted is never stored: it is the status a *_deleted event reports.
	Deleted Status = "deleted"
)

// Kind tells revenues from expenses; it is also their event entity type.
type Kind string

const (
	Revenue Kind = "revenue"
	Expense Kind = "expense"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == Revenue || k == Expense }

// ValidRevenueSource reports whether s is an accepted revenue source.
func ValidRevenueSource(s string) bool {
	switch s {
	case "room", "addon", "other":
		return true
	}
	return false
}

// ValidPropertyType reports whether t is an accepted kind of property.
func ValidPropertyType(t string) bool {
	switch t {
	case "hotel", "hostel", "resort", "apartment":
		return true
	}
	return false
}
