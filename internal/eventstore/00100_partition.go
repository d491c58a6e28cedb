package eventstore

import (
	"github.com/pressly/goose/v3"

	"hmp/internal/partitions"
)

// partitionMigration (version 100, after every SQL migration of the
// package) lays out events as hash partitions by org_id: they
// grow with use, and every statement that serves a request names one
// organization, so it reads and writes one partition.
func partitionMigration() *goose.Migration {
	return partitions.Migration(100, "events")
}

// partitionGuardMigration (version 101) puts the TRUNCATE guard on each
// partition of events that lacks it: schemas partitioned before
// partitions copied statement-level triggers have it on the parent only,
// and TRUNCATE events_p3 fires only the partition's own triggers.
func partitionGuardMigration() *goose.Migration {
	return partitions.TriggersMigration(101, "events")
}
