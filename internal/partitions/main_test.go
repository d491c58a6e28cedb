package partitions_test

import (
	"testing"

	"hmp/internal/app"
	"hmp/internal/postgres/pgtest"
)

var db *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, &db, app.Migrations()...) }
