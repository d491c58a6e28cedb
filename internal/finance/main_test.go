package finance_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"hmp/internal/clocktest"
	"hmp/internal/domain"
	"hmp/internal/domain/domaintest"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/idempotency"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/reports"
	"hmp/internal/tenancy"
)

// cluster is this package's throwaway PostgreSQL, migrated with the
// schemas finance's tables sit on.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	// reports.Migrations: cash_counts, which finance writes, was created
	// there, and its migration stays where it ran.
	pgtest.Main(m, &cluster, tenancy.Migrations(), eventstore.Migrations(), finance.Migrations(), idempotency.Migrations(), reports.Migrations())
}

// baseTime is where every fixture's clock starts: 12:00 in Kolkata, the
// default zone, so "today" is 2026-06-15 in India and in UTC alike.
var baseTime = time.Date(2026, 6, 15, 6, 30, 0, 0, time.UTC)

// today is the business date of baseTime in the default zone.
var today = domain.MustDate("2026-06-15")

// morning is an occurredAt on today: 10:00 in Kolkata.
var morning = time.Date(2026, 6, 15, 4, 30, 0, 0, time.UTC)

// fixture is a finance service over a real tenancy service on a fresh
// database: an organization with its ADMIN, a property in the default
// zone (Asia/Kolkata) and a MANAGER assigned to it. The clock is frozen at
// baseTime.
type fixture struct {
	pool  *pgxpool.Pool
	clock *clocktest.Clock
	ten   *tenancy.Service
	fin   *finance.Service
	org   domain.ID
	admin domain.Actor
	mgr   domain.Actor
	prop  domain.ID
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	pool := cluster.NewPool(t)
	c := clocktest.New(baseTime)
	ten, err := tenancy.New(pool, c.Now, tenancy.Config{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ten.Close)
	f := &fixture{pool: pool, clock: c, ten: ten, fin: finance.New(pool, ten, c.Now)}
	org, admin, err := ten.Signup(ctx, tenancy.SignupInput{OrgName: "Sea Side Stays", Email: "admin@seaside.test", Password: "correct horse", DisplayName: "Admin"})
	if err != nil {
		t.Fatal(err)
	}
	f.org = org.ID
	f.admin = domain.Actor{OrgID: org.ID, UserID: admin.ID, Role: domain.Admin}
	f.prop = f.property(t, "Sea View", "")
	f.mgr = f.manager(t, "manager@seaside.test", f.prop)
	return f
}

// property creates a property of the organization in zone tz ("" is the
// default, Asia/Kolkata).
func (f *fixture) property(t *testing.T, name, tz string) domain.ID {
	t.Helper()
	p, err := f.ten.CreateProperty(t.Context(), f.admin, tenancy.PropertyInput{Name: name, Type: "hotel", Timezone: tz})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// manager creates a MANAGER assigned to props.
func (f *fixture) manager(t *testing.T, email string, props ...domain.ID) domain.Actor {
	t.Helper()
	u, err := f.ten.CreateUser(t.Context(), f.admin, tenancy.CreateUserInput{Email: email, Password: "manager pass",
		DisplayName: "Manager", Role: domain.Manager, PropertyIDs: props})
	if err != nil {
		t.Fatal(err)
	}
	return domain.Actor{OrgID: f.org, UserID: u.ID, Role: domain.Manager}
}

// assign replaces the manager's properties.
func (f *fixture) assign(t *testing.T, mgr domain.Actor, props ...domain.ID) {
	t.Helper()
	if _, err := f.ten.SetUserProperties(t.Context(), f.admin, mgr.UserID, props); err != nil {
		t.Fatal(err)
	}
}

var kinds = []domain.Kind{domain.Revenue, domain.Expense}

// input is a valid create: a cash room revenue (or, for expenses,
// supplies) of amount on the morning of today.
func input(kind domain.Kind, prop domain.ID, amount int64) finance.CreateInput {
	in := finance.CreateInput{PropertyID: prop, AmountCents: amount, PaymentMode: domain.Cash, OccurredAt: morning}
	if kind == domain.Revenue {
		in.Source = "room"
	} else {
		in.Category = "supplies"
	}
	return in
}

// create records a row and fails the test on an error.
func (f *fixture) create(t *testing.T, actor domain.Actor, kind domain.Kind, in finance.CreateInput) finance.Transaction {
	t.Helper()
	r, w, err := f.tryCreate(t.Context(), actor, kind, in)
	if err != nil {
		t.Fatalf("create %s: %v", kind, err)
	}
	if w.Token.TxID == 0 {
		t.Fatalf("create %s: no consistency token", kind)
	}
	return r
}

// tryCreate is the one call of Service.Create in these tests (no
// idempotency record: that is the edge's).
func (f *fixture) tryCreate(ctx context.Context, actor domain.Actor, kind domain.Kind, in finance.CreateInput) (finance.Transaction, finance.Written, error) {
	return f.fin.Create(ctx, actor, kind, in)
}

// get reads a row as the ADMIN.
func (f *fixture) get(t *testing.T, kind domain.Kind, id domain.ID) finance.Transaction {
	t.Helper()
	r, err := f.fin.Get(t.Context(), f.admin, kind, id)
	if err != nil {
		t.Fatalf("get %s %s: %v", kind, id, err)
	}
	return r
}

// events returns one row's events, oldest first.
func (f *fixture) events(t *testing.T, kind domain.Kind, id domain.ID) []domain.Event {
	t.Helper()
	evs, err := eventstore.EntityEvents(t.Context(), f.pool, f.org, domain.EntityType(kind), id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// lastEvent returns the newest event of one entity.
func (f *fixture) lastEvent(t *testing.T, typ domain.EntityType, id domain.ID) domain.Event {
	t.Helper()
	evs, err := eventstore.EntityEvents(t.Context(), f.pool, f.org, typ, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatalf("no events for %s %s", typ, id)
	}
	return evs[len(evs)-1]
}

// orgEvents counts the events of an organization.
func orgEvents(t *testing.T, pool *pgxpool.Pool, org domain.ID) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE org_id = $1`, org).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// metadata decodes a revenue's or an expense's event metadata.
func metadata(t *testing.T, ev domain.Event) domain.TransactionMetadata {
	t.Helper()
	var md domain.TransactionMetadata
	if err := json.Unmarshal(ev.Metadata, &md); err != nil {
		t.Fatalf("event %s metadata %s: %v", ev.ID, ev.Metadata, err)
	}
	return md
}

// utc is t with every time in UTC, so that rows read back compare equal
// to rows written.
func utc(t finance.Transaction) finance.Transaction {
	t.OccurredAt, t.CreatedAt, t.UpdatedAt = t.OccurredAt.UTC(), t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	if t.ReviewedAt != nil {
		at := t.ReviewedAt.UTC()
		t.ReviewedAt = &at
	}
	return t
}

// same reports whether two rows are equal in every field.
func same(a, b finance.Transaction) bool { return reflect.DeepEqual(utc(a), utc(b)) }

// mustNotFoundField asserts that err is a NotFoundError naming field.
func mustNotFoundField(t *testing.T, err error, field string) {
	t.Helper()
	var nf *domain.NotFoundError
	if !errors.As(err, &nf) || domaintest.FieldName(nf.Field) != field {
		t.Fatalf("error = %v, want a not-found naming %s", err, field)
	}
}

func ptr[T any](v T) *T { return &v }

// ghostID is a well-formed id of nothing.
var ghostID = func() domain.ID {
	id, err := domain.ParseID("01900000-0000-7000-8000-000000000000")
	if err != nil {
		panic(err)
	}
	return id
}()
