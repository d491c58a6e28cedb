package tenancy

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"hmp/internal/domain"
)

// Bulk loading (hmp seed) writes this package's tables through COPY; the
// helpers below give each table's columns and the row Signup, CreateUser,
// CreateProperty and SetUserProperties would have inserted. Emails must be
// normalized (lower case, trimmed) as checkEmail leaves them.

// Bulk column lists, in the order of the matching row helpers' values.
var (
	OrgColumns             = []string{"id", "name", "created_at"}
	UserColumns            = []string{"org_id", "id", "email", "display_name", "role", "created_at"}
	LoginColumns           = []string{"email", "org_id", "user_id", "password_hash"}
	PropertyColumns        = []string{"org_id", "id", "name", "type", "timezone", "currency", "created_at"}
	ManagerPropertyColumns = []string{"org_id", "user_id", "property_id"}
)

// OrgRow returns the orgs row of an organization.
func OrgRow(id domain.ID, name string, created time.Time) []any {
	return []any{uuid(id), name, created}
}

// UserRow returns the users row of u.
func UserRow(u User) []any {
	return []any{uuid(u.OrgID), uuid(u.ID), u.Email, u.DisplayName, string(u.Role), u.CreatedAt}
}

// LoginRow returns the user_logins row of u with its bcrypt password hash.
func LoginRow(u User, hash []byte) []any {
	return []any{u.Email, uuid(u.OrgID), uuid(u.ID), string(hash)}
}

// PropertyRow returns the properties row of p.
func PropertyRow(p Property) []any {
	return []any{uuid(p.OrgID), uuid(p.ID), p.Name, p.Type, p.Timezone, p.Currency, p.CreatedAt}
}

// ManagerPropertyRow returns one manager_properties row.
func ManagerPropertyRow(org, user, property domain.ID) []any {
	return []any{uuid(org), uuid(user), uuid(property)}
}

func uuid(id domain.ID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }
