package reports

import (
	"github.com/pressly/goose/v3"

	"hmp/internal/partitions"
)

// partitionMigration (version 100, after every SQL migration of the
// package) lays out daily_cash_balances, monthly_cash_balances, projector_applied, cash_counts as hash partitions by org_id: they
// grow with use, and every statement that serves a request names one
// organization, so it reads and writes one partition.
func partitionMigration() *goose.Migration {
	return partitions.Migration(100, "daily_cash_balances", "monthly_cash_balances", "projector_applied", "cash_counts")
}
