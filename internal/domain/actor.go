package domain

import "time"

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

// UserState is what a signed token cannot say about its user: the role the
// user has now, and since when their tokens are good.
type UserState struct {
	Role Role
	// TokensNotBefore is when the user was last disabled: a token issued
	// before it is refused for good, also once the user is enabled again.
	// Zero: never disabled, every unexpired token is good.
	TokensNotBefore time.Time
}
