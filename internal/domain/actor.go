package domain

// Actor is the authenticated caller of a request: who, in which
// organization, with which role. Every service call that reads or writes
// tenant data takes one.
type Actor struct {
	OrgID  ID
	UserID ID
	Role   Role
}

// IsAdmin reports whether the actor is an ADMIN of their organization.
func (a Actor) IsAdmin() bool { return a.Role == Admin }
