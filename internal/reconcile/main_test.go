package reconcile_test

import (
	"testing"

	"hmp/internal/app"
	"hmp/internal/postgres/pgtest"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.Main(m, &cluster, app.Migrations()...)
}
