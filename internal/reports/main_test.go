package reports

import (
	"testing"

	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/idempotency"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/tenancy"
)

// cluster is this package's throwaway PostgreSQL, migrated with the
// schemas the reports tables sit on (the package cannot import app, which
// imports it).
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.Main(m, &cluster,
		tenancy.Migrations(), eventstore.Migrations(), finance.Migrations(), idempotency.Migrations(), Migrations())
}
