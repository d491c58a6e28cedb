// Package finance owns revenues and expenses, their approval workflow
// (pending, approved, rejected; deletion requests; the daily approval gate
// for managers) and appends one event per state change in the same
// transaction as the change.
package finance

import (
	"context"
	"embed"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/tenancy"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of the tables this package owns. It
// references tenancy's tables, so it runs after tenancy's set.
func Migrations() postgres.MigrationSet {
	return postgres.EmbeddedSet("finance", migrationFiles, partitionMigration())
}

// Transaction is a revenue or an expense.
type Transaction struct {
	OrgID      domain.ID
	ID         domain.ID
	Kind       domain.Kind
	PropertyID domain.ID
	// Source is set on revenues (room, addon, other), Category on expenses.
	Source   string
	Category string
	// AmountCents is in minor units of Currency, 1..10^15.
	AmountCents int64
	Currency    string
	PaymentMode domain.PaymentMode
	OccurredAt  time.Time
	// BusinessDate is the date of OccurredAt in the property's zone.
	BusinessDate  domain.Date
	BankReference string
	Description   string
	Status        domain.Status
	// Version counts the row's changes; it is the aggregate version of the
	// row's latest event.
	Version     int
	CreatedBy   domain.ID
	CreatedAt   time.Time
	UpdatedBy   domain.ID
	UpdatedAt   time.Time
	ReviewedBy  *domain.ID
	ReviewedAt  *time.Time
	ReviewNotes string
}

// State returns the row's state as events carry it.
func (t Transaction) State() domain.TransactionState {
	return domain.TransactionState{
		Status: t.Status, AmountCents: t.AmountCents, Currency: t.Currency, PaymentMode: t.PaymentMode,
		BusinessDate: t.BusinessDate, Source: t.Source, Category: t.Category,
		Description: t.Description, BankReference: t.BankReference, OccurredAt: t.OccurredAt.UTC(),
	}
}

// Properties is what finance needs of tenancy.
type Properties interface {
	Property(ctx context.Context, actor domain.Actor, id domain.ID) (tenancy.Property, error)
	PropertyByID(ctx context.Context, orgID, id domain.ID) (tenancy.Property, error)
	User(ctx context.Context, orgID, userID domain.ID) (tenancy.User, error)
}

// Service is the finance API. Every method takes the calling actor and
// answers ErrNotFound for anything outside the actor's reach.
type Service struct {
	pool  *pgxpool.Pool
	props Properties
	now   func() time.Time
	// groups gathers concurrent creates of one organization into one
	// transaction (group.go).
	groups createGroups
	// committed is called after every write transaction that committed
	// (nil: nobody listens).
	committed func()
}

// Option configures a Service.
type Option func(*Service)

// OnCommit has fn called after each write transaction commits its events
// (the outbox relay's Wake, so that an idle relay publishes at once). fn
// must not block.
func OnCommit(fn func()) Option { return func(s *Service) { s.committed = fn } }

// New returns a Service. now is the clock; one request uses one reading.
func New(pool *pgxpool.Pool, props Properties, now func() time.Time, opts ...Option) *Service {
	// PostgreSQL keeps microseconds: a row read back equals the row written.
	s := &Service{pool: pool, props: props, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }}
	for _, o := range opts {
		o(s)
	}
	return s
}

// withTx runs fn in a write transaction and tells the listener once it
// committed.
func (s *Service) withTx(ctx context.Context, fn func(pgx.Tx) error) error {
	err := postgres.WithTx(ctx, s.pool, fn)
	if err == nil && s.committed != nil {
		s.committed()
	}
	return err
}

// Written describes a committed write.
type Written struct {
	// Token is the write's consistency token.
	Token domain.Token
}
