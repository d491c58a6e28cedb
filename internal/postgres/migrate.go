package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// MigrationSet is one package's schema: its name (which names its version
// table, <name>_schema_version) and its SQL migrations.
type MigrationSet struct {
	Name string
	FS   fs.FS
}

// migrationLockID serializes migrations of concurrently starting instances.
const migrationLockID = 0x686d705f6d6967 // "hmp_mig"

// Migrate applies every pending migration of each set, in the order given
// (a set may reference the tables of sets before it). It is idempotent and
// safe to run from several instances at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, sets ...MigrationSet) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	for _, set := range sets {
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 600))
		if err != nil {
			return fmt.Errorf("migration locker: %w", err)
		}
		p, err := goose.NewProvider(goose.DialectPostgres, db, set.FS,
			goose.WithTableName(set.Name+"_schema_version"),
			goose.WithSessionLocker(locker),
			goose.WithDisableGlobalRegistry(true),
		)
		if err != nil {
			return fmt.Errorf("migrations of %s: %w", set.Name, err)
		}
		results, err := p.Up(ctx)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", set.Name, err)
		}
		for _, r := range results {
			logger.Info("migration_applied", "set", set.Name, "version", r.Source.Version, "duration", r.Duration)
		}
	}
	return nil
}
