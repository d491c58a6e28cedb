package app_test

import (
	"testing"

	"hmp/internal/postgres/pgtest"
	"hmp/internal/tools"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.Main(m, &cluster, tools.Migrations()...)
}
