// Package tenancy owns organizations, users, their logins, properties and
// the assignment of managers to properties. It answers the question every
// other package asks first: may this actor see this property?
package tenancy

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"
	"golang.org/x/crypto/bcrypt"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// Org is a tenant.
type Org struct {
	ID        domain.ID
	Name      string
	CreatedAt time.Time
}

// User belongs to one organization. PropertyIDs are the properties a
// MANAGER is assigned to (always empty for an ADMIN).
type User struct {
	OrgID       domain.ID
	ID          domain.ID
	Email       string
	DisplayName string
	Role        domain.Role
	PropertyIDs []domain.ID
	// Disabled users may not log in and their tokens do not work.
	Disabled  bool
	CreatedAt time.Time
}

// Property is a hotel, hostel, resort or apartment. Properties never change
// zone once created, so they are cached by id.
type Property struct {
	OrgID     domain.ID
	ID        domain.ID
	Name      string
	Type      string
	Timezone  string
	Currency  string
	CreatedAt time.Time
	// Location is the loaded Timezone: business dates are computed in it.
	Location *time.Location
}

// Today returns the calendar date of now in the property's zone.
func (p Property) Today(now time.Time) domain.Date { return domain.BusinessDate(now, p.Location) }

// Config tunes the service. The zero value means the defaults.
type Config struct {
	// BcryptCost is the password hashing cost. Default bcrypt.DefaultCost
	// (10); tests use bcrypt.MinCost.
	BcryptCost int
	// PropertyCacheSize bounds the in-process property cache, in entries.
	// Default 100,000.
	PropertyCacheSize int
	// ScopeMaxStale is how long a MANAGER's property assignments, once
	// read, answer access checks on this instance (changes made here are
	// seen at once). Default DefaultScopeMaxStale (2 s); negative: off,
	// every check reads PostgreSQL.
	ScopeMaxStale time.Duration
}

// Service is the tenancy API.
type Service struct {
	pool      *pgxpool.Pool
	now       func() time.Time
	cost      int
	props     *otter.Cache[propKey, Property]
	scopes    *scopes // nil: assignments are read on every check
	dummyHash []byte
}

type propKey struct{ org, id domain.ID }

// New returns a Service on pool. now is the clock.
func New(pool *pgxpool.Pool, now func() time.Time, cfg Config) (*Service, error) {
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.PropertyCacheSize == 0 {
		cfg.PropertyCacheSize = 100_000
	}
	cache, err := otter.New(&otter.Options[propKey, Property]{MaximumSize: cfg.PropertyCacheSize})
	if err != nil {
		return nil, fmt.Errorf("property cache: %w", err)
	}
	scopes, err := newScopes(cfg.ScopeMaxStale, cfg.PropertyCacheSize)
	if err != nil {
		return nil, err
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("timing-equalizer"), cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("hash: %w", err)
	}
	return &Service{pool: pool, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }, cost: cfg.BcryptCost, props: cache, scopes: scopes, dummyHash: dummy}, nil
}

// Close stops the cache's background work.
func (s *Service) Close() {
	s.props.StopAllGoroutines()
	if s.scopes != nil {
		s.scopes.cache.StopAllGoroutines()
	}
}

// SignupInput creates an organization and its first ADMIN.
type SignupInput struct {
	OrgName, Email, Password, DisplayName string
}

// Signup creates an organization and its first ADMIN user. A taken email is
// ErrConflict.
func (s *Service) Signup(ctx context.Context, in SignupInput) (Org, User, error) {
	v := &domain.ValidationError{}
	checkText(v, "body.orgName", in.OrgName, 200)
	email := checkEmail(v, "body.email", in.Email)
	checkPassword(v, "body.password", in.Password)
	checkText(v, "body.displayName", in.DisplayName, 200)
	if err := v.Err(); err != nil {
		return Org{}, User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), s.cost)
	if err != nil {
		return Org{}, User{}, fmt.Errorf("hash password: %w", err)
	}
	now := s.now().UTC()
	org := Org{ID: domain.NewID(now), Name: strings.TrimSpace(in.OrgName), CreatedAt: now}
	user := User{OrgID: org.ID, ID: domain.NewID(now), Email: email, DisplayName: strings.TrimSpace(in.DisplayName), Role: domain.Admin, PropertyIDs: []domain.ID{}, CreatedAt: now}
	err = postgres.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)`, org.ID, org.Name, now); err != nil {
			return fmt.Errorf("insert org: %w", err)
		}
		return insertUser(ctx, tx, user, hash)
	})
	if err != nil {
		return Org{}, User{}, err
	}
	return org, user, nil
}

// Authenticate checks an email and password and returns the user. Any
// mismatch is ErrUnauthenticated, in the same time whether or not the email
// exists.
func (s *Service) Authenticate(ctx context.Context, email, password string) (User, error) {
	var (
		u    User
		hash string
	)
	if !domain.StorableText(email) {
		// No stored email holds a NUL; do not let the database refuse it.
		email = ""
	}
	err := s.pool.QueryRow(ctx, `
		SELECT u.org_id, u.id, u.email, u.display_name, u.role, u.disabled, u.created_at, l.password_hash
		FROM user_logins l JOIN users u ON u.org_id = l.org_id AND u.id = l.user_id
		WHERE l.email = $1`, strings.ToLower(strings.TrimSpace(email))).
		Scan(&u.OrgID, &u.ID, &u.Email, &u.DisplayName, &u.Role, &u.Disabled, &u.CreatedAt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return User{}, fmt.Errorf("%w: invalid email or password", domain.ErrUnauthenticated)
	}
	if err != nil {
		return User{}, fmt.Errorf("look up login: %w", postgres.Translate(err))
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || u.Disabled {
		// A disabled user is told no more than a wrong password would.
		return User{}, fmt.Errorf("%w: invalid email or password", domain.ErrUnauthenticated)
	}
	return u, nil
}

// CreateUserInput adds a user to the caller's organization.
type CreateUserInput struct {
	Email, Password, DisplayName string
	Role                         domain.Role
	PropertyIDs                  []domain.ID
}

// CreateUser adds a user to the actor's organization. Only an ADMIN may;
// a taken email is ErrConflict; an unknown property is ErrNotFound.
func (s *Service) CreateUser(ctx context.Context, actor domain.Actor, in CreateUserInput) (User, error) {
	if !actor.IsAdmin() {
		return User{}, fmt.Errorf("%w: only an ADMIN may create users", domain.ErrForbidden)
	}
	v := &domain.ValidationError{}
	email := checkEmail(v, "body.email", in.Email)
	checkPassword(v, "body.password", in.Password)
	checkText(v, "body.displayName", in.DisplayName, 200)
	if !in.Role.Valid() {
		v.Add("body.role", "must be ADMIN or MANAGER", string(in.Role))
	} else if in.Role == domain.Admin && len(in.PropertyIDs) > 0 {
		v.Add("body.propertyIds", "only a MANAGER is assigned properties", nil)
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	ids := dedupe(in.PropertyIDs)
	if err := s.checkProperties(ctx, actor.OrgID, ids); err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), s.cost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	now := s.now().UTC()
	u := User{OrgID: actor.OrgID, ID: domain.NewID(now), Email: email, DisplayName: strings.TrimSpace(in.DisplayName), Role: in.Role, PropertyIDs: ids, CreatedAt: now}
	err = postgres.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := insertUser(ctx, tx, u, hash); err != nil {
			return err
		}
		return insertAssignments(ctx, tx, u.OrgID, u.ID, ids)
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// SetUserProperties replaces the properties a MANAGER is assigned to. Only
// an ADMIN may; an unknown user or property is ErrNotFound.
func (s *Service) SetUserProperties(ctx context.Context, actor domain.Actor, userID domain.ID, propertyIDs []domain.ID) (User, error) {
	if !actor.IsAdmin() {
		return User{}, fmt.Errorf("%w: only an ADMIN may assign properties", domain.ErrForbidden)
	}
	u, err := s.User(ctx, actor.OrgID, userID)
	if err != nil {
		return User{}, err
	}
	ids := dedupe(propertyIDs)
	if u.Role != domain.Manager && len(ids) > 0 {
		return User{}, domain.Invalid("body.propertyIds", "only a MANAGER is assigned properties", nil)
	}
	if err := s.checkProperties(ctx, actor.OrgID, ids); err != nil {
		return User{}, err
	}
	err = postgres.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock the user row so concurrent replacements serialize.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE org_id = $1 AND id = $2 FOR UPDATE`, actor.OrgID, userID); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM manager_properties WHERE org_id = $1 AND user_id = $2`, actor.OrgID, userID); err != nil {
			return fmt.Errorf("clear assignments: %w", err)
		}
		return insertAssignments(ctx, tx, actor.OrgID, userID, ids)
	})
	s.forgetScope(actor.OrgID, userID) // also on error: the commit's outcome may be unknown
	if err != nil {
		return User{}, err
	}
	u.PropertyIDs = ids
	return u, nil
}

// User returns a user of the organization with their assignments.
func (s *Service) User(ctx context.Context, orgID, userID domain.ID) (User, error) {
	var u User
	err := s.pool.QueryRow(ctx, `
		SELECT org_id, id, email, display_name, role, disabled, created_at,
		       ARRAY(SELECT property_id FROM manager_properties m WHERE m.org_id = u.org_id AND m.user_id = u.id ORDER BY property_id)
		FROM users u WHERE org_id = $1 AND id = $2`, orgID, userID).
		Scan(&u.OrgID, &u.ID, &u.Email, &u.DisplayName, &u.Role, &u.Disabled, &u.CreatedAt, &u.PropertyIDs)
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", userID, postgres.Translate(err))
	}
	if u.PropertyIDs == nil {
		// Never nil: callers filter by this list, and a nil list would
		// read as "no filter" where it means "no property".
		u.PropertyIDs = []domain.ID{}
	}
	return u, nil
}

// PropertyInput creates a property.
type PropertyInput struct {
	Name, Type, Timezone, Currency string
}

// CreateProperty adds a property to the actor's organization. Only an
// ADMIN may. Timezone defaults to Asia/Kolkata, currency to INR.
func (s *Service) CreateProperty(ctx context.Context, actor domain.Actor, in PropertyInput) (Property, error) {
	if !actor.IsAdmin() {
		return Property{}, fmt.Errorf("%w: only an ADMIN may create properties", domain.ErrForbidden)
	}
	v := &domain.ValidationError{}
	checkText(v, "body.name", in.Name, 200)
	if !domain.ValidPropertyType(in.Type) {
		v.Add("body.type", "must be one of hotel, hostel, resort, apartment", in.Type)
	}
	if in.Timezone == "" {
		in.Timezone = domain.DefaultTimezone
	}
	loc, err := LoadZone(in.Timezone)
	if err != nil {
		v.Add("body.timezone", "must be an IANA time zone name such as Asia/Kolkata", in.Timezone)
	}
	if in.Currency == "" {
		in.Currency = domain.DefaultCurrency
	}
	if !validCurrency(in.Currency) {
		v.Add("body.currency", "must be a three-letter upper-case ISO 4217 code", in.Currency)
	}
	if err := v.Err(); err != nil {
		return Property{}, err
	}
	now := s.now().UTC()
	p := Property{OrgID: actor.OrgID, ID: domain.NewID(now), Name: strings.TrimSpace(in.Name), Type: in.Type,
		Timezone: in.Timezone, Currency: in.Currency, CreatedAt: now, Location: loc}
	// A batch: one round trip, or a transaction with the caller's
	// BeforeCommit hook (an idempotency key) when ctx carries one.
	b := &pgx.Batch{}
	b.Queue(`
		INSERT INTO properties (org_id, id, name, type, timezone, currency, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, p.OrgID, p.ID, p.Name, p.Type, p.Timezone, p.Currency, now)
	if err := postgres.SendBatch(ctx, s.pool, b); err != nil {
		return Property{}, fmt.Errorf("insert property: %w", postgres.Translate(err))
	}
	s.props.Set(propKey{p.OrgID, p.ID}, p)
	return p, nil
}

// Properties lists the properties the actor may see: all of the
// organization's for an ADMIN, the assigned ones for a MANAGER; by name.
func (s *Service) Properties(ctx context.Context, actor domain.Actor) ([]Property, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT org_id, id, name, type, timezone, currency, created_at FROM properties p
		WHERE org_id = $1 AND ($2 OR EXISTS (
			SELECT 1 FROM manager_properties m WHERE m.org_id = p.org_id AND m.user_id = $3 AND m.property_id = p.id))
		ORDER BY name, id`, actor.OrgID, actor.IsAdmin(), actor.UserID)
	if err != nil {
		return nil, fmt.Errorf("list properties: %w", postgres.Translate(err))
	}
	props, err := pgx.CollectRows(rows, scanProperty)
	if err != nil {
		return nil, fmt.Errorf("list properties: %w", postgres.Translate(err))
	}
	return props, nil
}

// Property returns a property the actor may see. One that does not exist,
// belongs to another organization or is not assigned to the calling
// MANAGER is ErrNotFound.
func (s *Service) Property(ctx context.Context, actor domain.Actor, id domain.ID) (Property, error) {
	p, err := s.property(ctx, actor.OrgID, id)
	if err != nil {
		return Property{}, err
	}
	if actor.IsAdmin() {
		return p, nil
	}
	assigned, err := s.isAssigned(ctx, actor.OrgID, actor.UserID, id)
	if err != nil {
		return Property{}, err
	}
	if !assigned {
		return Property{}, domain.NotFoundf("property %s not found", id)
	}
	return p, nil
}

// PropertyByID returns a property of the organization without an access
// check, for internal work that already holds the right (an event's
// property, a stored row's zone).
func (s *Service) PropertyByID(ctx context.Context, orgID, id domain.ID) (Property, error) {
	return s.property(ctx, orgID, id)
}

func (s *Service) property(ctx context.Context, orgID, id domain.ID) (Property, error) {
	if p, ok := s.props.GetIfPresent(propKey{orgID, id}); ok {
		return p, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT org_id, id, name, type, timezone, currency, created_at FROM properties WHERE org_id = $1 AND id = $2`, orgID, id)
	if err != nil {
		return Property{}, fmt.Errorf("load property: %w", postgres.Translate(err))
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanProperty)
	if errors.Is(err, pgx.ErrNoRows) {
		return Property{}, domain.NotFoundf("property %s not found", id)
	}
	if err != nil {
		return Property{}, fmt.Errorf("load property: %w", postgres.Translate(err))
	}
	s.props.Set(propKey{orgID, id}, p)
	return p, nil
}

func scanProperty(row pgx.CollectableRow) (Property, error) {
	var p Property
	if err := row.Scan(&p.OrgID, &p.ID, &p.Name, &p.Type, &p.Timezone, &p.Currency, &p.CreatedAt); err != nil {
		return p, err
	}
	loc, err := LoadZone(p.Timezone)
	if err != nil {
		return p, fmt.Errorf("property %s has an unknown zone: %w", p.ID, err)
	}
	p.Location = loc
	return p, nil
}

// LoadZone loads an IANA zone by name, refusing the process-local "Local".
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return time.LoadLocation(name)
}

func (s *Service) checkProperties(ctx context.Context, orgID domain.ID, ids []domain.ID) error {
	for _, id := range ids {
		if _, err := s.property(ctx, orgID, id); err != nil {
			return err
		}
	}
	return nil
}

func insertUser(ctx context.Context, tx pgx.Tx, u User, hash []byte) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO users (org_id, id, email, display_name, role, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		u.OrgID, u.ID, u.Email, u.DisplayName, u.Role, u.CreatedAt); err != nil {
		return fmt.Errorf("insert user: %w", postgres.Translate(err))
	}
	_, err := tx.Exec(ctx, `INSERT INTO user_logins (email, org_id, user_id, password_hash) VALUES ($1, $2, $3, $4)`,
		u.Email, u.OrgID, u.ID, string(hash))
	if postgres.IsUniqueViolation(err, "user_logins_pkey") {
		return domain.Conflictf("email %s is already registered", u.Email)
	}
	if err != nil {
		return fmt.Errorf("insert login: %w", postgres.Translate(err))
	}
	return nil
}

func insertAssignments(ctx context.Context, tx pgx.Tx, orgID, userID domain.ID, ids []domain.ID) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO manager_properties (org_id, user_id, property_id)
		SELECT $1, $2, unnest($3::uuid[])`, orgID, userID, ids)
	if err != nil {
		return fmt.Errorf("assign properties: %w", postgres.Translate(err))
	}
	return nil
}

func dedupe(ids []domain.ID) []domain.ID {
	out := make([]domain.ID, 0, len(ids))
	seen := make(map[domain.ID]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func checkText(v *domain.ValidationError, field, s string, max int) {
	switch t := strings.TrimSpace(s); {
	case t == "":
		v.Add(field, "must not be empty", s)
	case utf8.RuneCountInString(t) > max:
		v.Add(field, fmt.Sprintf("must be at most %d characters", max), nil)
	case !domain.StorableText(t):
		v.Add(field, "must not contain NUL characters", nil)
	}
}

func checkEmail(v *domain.ValidationError, field, s string) string {
	e := strings.ToLower(strings.TrimSpace(s))
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 254 {
		v.Add(field, "must be an email address", s)
	}
	return e
}

func checkPassword(v *domain.ValidationError, field, s string) {
	switch {
	case utf8.RuneCountInString(s) < 8:
		v.Add(field, "must be at least 8 characters", nil)
	case len(s) > 72:
		v.Add(field, "must be at most 72 bytes", nil)
	}
}

func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
