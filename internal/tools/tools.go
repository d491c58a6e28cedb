// Package tools is the operator commands' work without a server (hmp
// migrate, reconcile, seed, verify, rebuild, partitions, advise-indexes):
// the configured database, embedded or by URL, opened and migrated the way
// a serving instance opens it, and the commands that need more than a
// pool (reconcile --fix, index advice).
package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/config"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/idempotency"
	"hmp/internal/postgres"
	"hmp/internal/reconcile"
	"hmp/internal/reports"
	"hmp/internal/tenancy"
)

// Migrations lists every package's schema in dependency order.
func Migrations() []postgres.MigrationSet {
	return []postgres.MigrationSet{
		tenancy.Migrations(),
		eventstore.Migrations(),
		finance.Migrations(),
		idempotency.Migrations(),
		reports.Migrations(),
		reconcile.Migrations(),
	}
}

// OpenDatabase returns the database URL to use: cfg.DatabaseURL, or the
// private cluster it starts under cfg.DataDir (returned so the caller can
// stop it).
func OpenDatabase(ctx context.Context, cfg config.Config, logger *slog.Logger) (string, *postgres.Local, error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, nil, nil
	}
	dir := filepath.Join(cfg.DataDir, "postgres")
	if err := postgres.Reachable(dir); err != nil {
		// Run as root from a folder the postgres user cannot enter (say
		// under /root): keep the cluster where it can, one per data dir.
		abs, _ := filepath.Abs(cfg.DataDir)
		sum := sha256.Sum256([]byte(abs))
		alt := filepath.Join("/var/lib/hmp", hex.EncodeToString(sum[:6]), "postgres")
		logger.Warn("embedded_postgres_relocated", "reason", err.Error(), "dir", alt)
		dir = alt
	}
	local, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: dir, BinDir: cfg.PostgresBinDir, Settings: cfg.PostgresSettings, Logger: logger})
	if err != nil {
		return "", nil, fmt.Errorf("embedded postgres: %w", err)
	}
	return local.URL(), local, nil
}

// Tool is the database of an operator command (hmp migrate, reconcile,
// seed, verify, rebuild, partitions, advise-indexes): the configured one,
// or the embedded cluster under the data dir, started for the command.
type Tool struct {
	// Pool is the command's pool, sized for a tool, not for serving.
	Pool *pgxpool.Pool
	// URL is the database's.
	URL string
	// Embedded says the cluster under the data dir was started for the
	// command (no database URL configured).
	Embedded bool
	local    *postgres.Local
}

// ToolOptions are what differs between the operator commands.
type ToolOptions struct {
	// Conns is the most connections the command uses at once; 0: 2, the
	// least the migrations need (goose's lock holds one).
	Conns int
	// ReadOnly opens the database without migrating it: the command only
	// reads what the serving instances migrated (verify, advise-indexes).
	ReadOnly bool
}

// OpenTool opens the configured database for an operator command and
// migrates it the way Start does: a schema created now gets the
// configured partition count (cfg.PartitionCount), an existing one keeps
// the count recorded when it was created. Close releases it.
func OpenTool(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ToolOptions) (_ *Tool, err error) {
	cfg = cfg.WithDefaults()
	url, local, err := OpenDatabase(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	t := &Tool{URL: url, Embedded: local != nil, local: local}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if t.Pool, err = postgres.Open(ctx, url, postgres.PoolConfig{MaxConns: int32(max(opts.Conns, 2)), MinConns: 1}); err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if err := MigrateWith(ctx, t.Pool, logger, cfg.PartitionCount()); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Close closes the pool and stops the embedded cluster, if started.
func (t *Tool) Close() {
	if t.Pool != nil {
		t.Pool.Close()
	}
	if t.local != nil {
		_ = t.local.Stop()
	}
}

// Migrate applies every package's pending migrations to the database at
// url (a new schema gets postgres.DefaultPartitions).
func Migrate(ctx context.Context, url string, logger *slog.Logger) error {
	return MigrateLayout(ctx, url, logger, postgres.DefaultPartitions)
}

// MigrateLayout is Migrate creating a new schema with the given partition
// count (0: unpartitioned).
func MigrateLayout(ctx context.Context, url string, logger *slog.Logger, parts int) error {
	pool, err := postgres.Open(ctx, url, postgres.PoolConfig{MaxConns: 2, MinConns: 1})
	if err != nil {
		return err
	}
	defer pool.Close()
	return MigrateWith(ctx, pool, logger, parts)
}

// MigrateWith applies every package's pending migrations to pool; a schema
// created now gets parts hash partitions by org_id (0: unpartitioned), an
// existing one keeps the count recorded when it was created.
func MigrateWith(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, parts int) error {
	return postgres.MigrateWith(ctx, pool, logger, postgres.MigrateOptions{Partitions: parts}, Migrations()...)
}
