package partitions_test

import (
	"testing"

	"hmp/internal/postgres/pgtest"
	"hmp/internal/tools"
)

var db *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, &db, tools.Migrations()...) }
