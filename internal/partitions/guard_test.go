package partitions_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"hmp/internal/partitions"
)

// TestMigrateGuardsEveryPartition: the statement-level TRUNCATE guard of
// events, which PostgreSQL does not clone to partitions, is on every
// partition after 'hmp partitions migrate' moves an unpartitioned schema,
// and a later migrate puts it on a partition created by hand since.
func TestMigrateGuardsEveryPartition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := newDatabase(t, "guard_unpartitioned", 0)
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	if _, err := partitions.Migrate(ctx, sqlDB, partitions.MigrateConfig{Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	checkTruncateRefused(t, pool, 4)

	// A partition replaced by hand has none of the parent's statement
	// triggers until migrate runs again.
	for _, sql := range []string{
		`ALTER TABLE events DETACH PARTITION events_p3`,
		`DROP TABLE events_p3`,
		`CREATE TABLE events_p3 PARTITION OF events FOR VALUES WITH (MODULUS 4, REMAINDER 3)`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := pool.Exec(ctx, `TRUNCATE events_p3`); err != nil {
		t.Fatalf("TRUNCATE of the partition made by hand: %v (the test expects it unguarded)", err)
	}
	moved, err := partitions.Migrate(ctx, sqlDB, partitions.MigrateConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range moved {
		if !m.Already {
			t.Fatalf("second migrate moved %s again: %+v", m.Table, m)
		}
	}
	checkTruncateRefused(t, pool, 4)
}

// checkTruncateRefused checks that events has parts partitions and that
// TRUNCATE of each (and of events) is refused by the append-only guard.
func checkTruncateRefused(t *testing.T, pool *pgxpool.Pool, parts int) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != parts {
		t.Fatalf("events has partitions %v, want %d", names, parts)
	}
	for _, table := range append([]string{"events"}, names...) {
		_, err := pool.Exec(ctx, fmt.Sprintf(`TRUNCATE %s`, table))
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("TRUNCATE %s: err = %v, want the append-only refusal", table, err)
		}
	}
}
