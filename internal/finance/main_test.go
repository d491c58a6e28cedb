package finance

import (
	"testing"

	"hmp/internal/eventstore"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/tenancy"
)

// cluster is this package's throwaway PostgreSQL, migrated with the
// schemas the finance tables sit on.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.Main(m, &cluster, tenancy.Migrations(), eventstore.Migrations(), Migrations())
}
