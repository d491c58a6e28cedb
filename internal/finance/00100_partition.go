package finance

import (
	"github.com/pressly/goose/v3"

	"hmp/internal/partitions"
)

// partitionMigration (version 100, after every SQL migration of the
// package) lays out transactions as hash partitions by org_id: they
// grow with use, and every statement that serves a request names one
// organization, so it reads and writes one partition.
func partitionMigration() *goose.Migration {
	return partitions.Migration(100, "transactions")
}
