package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// MigrationSet is one package's schema: its name (which names its version
// table, <name>_schema_version), its SQL migrations and its Go migrations
// (goose versions of their own, run in version order with the SQL ones).
type MigrationSet struct {
	Name string
	FS   fs.FS
	Go   []*goose.Migration
}

// EmbeddedSet is the MigrationSet name of a package whose SQL migrations
// are embedded under migrations/ in files (//go:embed migrations/*.sql),
// with its Go migrations, if any.
func EmbeddedSet(name string, files fs.FS, goMigrations ...*goose.Migration) MigrationSet {
	sub, err := fs.Sub(files, "migrations")
	if err != nil {
		panic(fmt.Sprintf("postgres: migrations of %s: %v", name, err)) // only for an invalid path, which "migrations" is not
	}
	return MigrationSet{Name: name, FS: sub, Go: goMigrations}
}

// DefaultPartitions is the hash partition count by org_id of a new schema
// (the scaling guide's).
const DefaultPartitions = 16

// MigrateOptions are the choices fixed when a schema is created.
type MigrateOptions struct {
	// Partitions is the number of hash partitions by org_id of the tables
	// that grow with use; zero or less keeps them unpartitioned. Recorded in
	// schema_settings by the first migration of a database and fixed from
	// then on: a later value is ignored (hmp partitions migrate changes
	// the layout).
	Partitions int
}

// migrationLockID serializes migrations of concurrently starting instances.
const migrationLockID = 0x686d705f6d6967 // "hmp_mig"

// Migrate applies every pending migration of each set, in the order given
// (a set may reference the tables of sets before it). It is idempotent and
// safe to run from several instances at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, sets ...MigrationSet) error {
	return MigrateWith(ctx, pool, logger, MigrateOptions{Partitions: DefaultPartitions}, sets...)
}

// MigrateWith is Migrate with the creation-time choices of opts.
func MigrateWith(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, opts MigrateOptions, sets ...MigrationSet) error {
	if err := recordSettings(ctx, pool, logger, opts); err != nil {
		return err
	}
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
			goose.WithGoMigrations(set.Go...),
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

// recordSettings keeps the creation-time choices in schema_settings, a
// platform-wide table Go migrations read them from (goose hands a
// migration a transaction, not parameters). The first value wins.
func recordSettings(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, opts MigrateOptions) error {
	parts := max(opts.Partitions, 0)
	var kept string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Concurrently starting instances would race on CREATE TABLE.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockID)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_settings (
			name  text PRIMARY KEY,
			value text NOT NULL)`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			WITH ins AS (INSERT INTO schema_settings (name, value) VALUES ('partitions', $1)
			             ON CONFLICT (name) DO NOTHING RETURNING value)
			SELECT value FROM ins UNION ALL SELECT value FROM schema_settings WHERE name = 'partitions'
			LIMIT 1`, strconv.Itoa(parts)).Scan(&kept)
	})
	if err != nil {
		return fmt.Errorf("record schema settings: %w", Translate(err))
	}
	if kept != strconv.Itoa(parts) {
		logger.Info("partitions_setting_kept", "recorded", kept, "requested", parts,
			"hint", "the partition count is fixed when the schema is created; 'hmp partitions migrate' partitions an unpartitioned schema")
	}
	return nil
}
