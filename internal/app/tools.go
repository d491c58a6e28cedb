package app

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/config"
	"hmp/internal/postgres"
)

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
		if err := migrate(ctx, t.Pool, logger, cfg.PartitionCount()); err != nil {
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
	return migrate(ctx, pool, logger, parts)
}

// migrate applies every package's pending migrations to pool; a schema
// created now gets parts hash partitions by org_id (0: unpartitioned), an
// existing one keeps the count recorded when it was created.
func migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, parts int) error {
	return postgres.MigrateWith(ctx, pool, logger, postgres.MigrateOptions{Partitions: parts}, Migrations()...)
}
