package tenancy_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"hmp/internal/clocktest"
	"hmp/internal/domain"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/tenancy"
)

// cluster is this package's throwaway PostgreSQL with tenancy's tables.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.Main(m, &cluster, tenancy.Migrations())
}

// baseTime is where every fixture's clock starts.
var baseTime = time.Date(2026, 6, 15, 6, 30, 0, 0, time.UTC)

// fixture is a tenancy service on a fresh database with one signed-up
// organization: its ADMIN, a property in the default zone and a MANAGER
// assigned to it.
type fixture struct {
	pool  *pgxpool.Pool
	clock *clocktest.Clock
	svc   *tenancy.Service
	org   tenancy.Org
	admin domain.Actor
	mgr   domain.Actor
	prop  tenancy.Property
}

const (
	adminEmail    = "admin@seaside.test"
	adminPassword = "correct horse"
	mgrEmail      = "manager@seaside.test"
	mgrPassword   = "manager pass"
)

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{pool: cluster.NewPool(t), clock: clocktest.New(baseTime)}
	f.svc = f.service(t, tenancy.Config{})
	org, admin, err := f.svc.Signup(t.Context(), tenancy.SignupInput{OrgName: "Sea Side Stays", Email: adminEmail, Password: adminPassword, DisplayName: "Admin"})
	if err != nil {
		t.Fatal(err)
	}
	f.org = org
	f.admin = domain.Actor{OrgID: org.ID, UserID: admin.ID, Role: domain.Admin}
	f.prop = f.property(t, f.admin, "Sea View", "")
	f.mgr = f.manager(t, mgrEmail, f.prop.ID)
	return f
}

// service is another tenancy service (another instance) on the
// fixture's database, closed at cleanup.
func (f *fixture) service(t *testing.T, cfg tenancy.Config) *tenancy.Service {
	t.Helper()
	cfg.BcryptCost = bcrypt.MinCost
	svc, err := tenancy.New(f.pool, f.clock.Now, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

func (f *fixture) property(t *testing.T, actor domain.Actor, name, tz string) tenancy.Property {
	t.Helper()
	p, err := f.svc.CreateProperty(t.Context(), actor, tenancy.PropertyInput{Name: name, Type: "hotel", Timezone: tz})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) manager(t *testing.T, email string, props ...domain.ID) domain.Actor {
	t.Helper()
	u, err := f.svc.CreateUser(t.Context(), f.admin, tenancy.CreateUserInput{Email: email, Password: mgrPassword,
		DisplayName: "Manager", Role: domain.Manager, PropertyIDs: props})
	if err != nil {
		t.Fatal(err)
	}
	return domain.Actor{OrgID: f.org.ID, UserID: u.ID, Role: domain.Manager}
}

// signup creates another organization and returns its ADMIN.
func (f *fixture) signup(t *testing.T, name, email string) domain.Actor {
	t.Helper()
	org, u, err := f.svc.Signup(t.Context(), tenancy.SignupInput{OrgName: name, Email: email, Password: adminPassword, DisplayName: "Owner"})
	if err != nil {
		t.Fatal(err)
	}
	return domain.Actor{OrgID: org.ID, UserID: u.ID, Role: domain.Admin}
}

// ghostID is a well-formed id of nothing.
var ghostID = func() domain.ID {
	id, err := domain.ParseID("01900000-0000-7000-8000-000000000000")
	if err != nil {
		panic(err)
	}
	return id
}()

func ptr[T any](v T) *T { return &v }
