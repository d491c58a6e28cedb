package partitions

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"
)

// Migration is the goose Go migration (of the owning package's set) that
// partitions tables by hash of org_id into the count recorded in
// schema_settings when the schema was created. It runs after the package's
// SQL migrations of lower versions, so the partitioned tables take every
// column and index those added. An empty table is partitioned in place; a
// table with rows (a database that predates partitioning) is left as it is
// and recorded as pending, for 'hmp partitions migrate' to move online,
// since copying it here would block the application for the whole copy.
// A count of 0 (the unpartitioned layout) records the tables as pending.
func Migration(version int64, tables ...string) *goose.Migration {
	up := func(ctx context.Context, tx *sql.Tx) error {
		parts, err := Count(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			if err := partitionEmpty(ctx, tx, t, parts); err != nil {
				return err
			}
		}
		return nil
	}
	return goose.NewGoMigration(version, &goose.GoFunc{RunTx: up}, nil)
}

func partitionEmpty(ctx context.Context, tx *sql.Tx, table string, parts int) error {
	done, err := isPartitioned(ctx, tx, table)
	if err != nil {
		return err
	}
	if done {
		if err := PartitionTriggers(ctx, tx, table); err != nil {
			return err
		}
		return setState(ctx, tx, table, StatePartitioned)
	}
	var empty bool
	if err := tx.QueryRowContext(ctx, `SELECT NOT EXISTS (SELECT FROM `+ident(table)+`)`).Scan(&empty); err != nil {
		return fmt.Errorf("partition %s: %w", table, err)
	}
	if parts < 1 || !empty {
		return setState(ctx, tx, table, StatePending)
	}
	l, err := plan(ctx, tx, table, parts)
	if err != nil {
		return err
	}
	if err := l.create(ctx, tx); err != nil {
		return err
	}
	if err := l.swap(ctx, tx); err != nil {
		return err
	}
	return setState(ctx, tx, table, StatePartitioned)
}

// TriggersMigration is the goose Go migration that gives the partitions of
// tables that are already partitioned their table's statement-level
// triggers (see PartitionTriggers), which schemas partitioned before it
// lack. Unpartitioned tables are left as they are: their move copies them.
func TriggersMigration(version int64, tables ...string) *goose.Migration {
	up := func(ctx context.Context, tx *sql.Tx) error {
		for _, t := range tables {
			if err := PartitionTriggers(ctx, tx, t); err != nil {
				return err
			}
		}
		return nil
	}
	return goose.NewGoMigration(version, &goose.GoFunc{RunTx: up}, nil)
}
