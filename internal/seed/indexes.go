package seed

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/postgres"
)

// ddl is a dropped secondary index, unique constraint or foreign key and
// the statement that makes it again.
type ddl struct {
	table, name, create string
	foreign             bool
}

func tableNames() []string {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	return names
}

// dropSecondary drops the foreign keys, primary keys, unique constraints
// and plain indexes of the seeded tables and returns how to make them
// again. Building an index once over the loaded table (a sort) is cheaper
// than maintaining it row by row, and a foreign key is checked by one join
// instead of a trigger per row. The generated keys are unique by
// construction; rebuilding the keys checks it.
func dropSecondary(ctx context.Context, pool *pgxpool.Pool) ([]ddl, error) {
	rows, err := pool.Query(ctx, `
		SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype = 'f'
		FROM pg_constraint c
		WHERE c.contype IN ('f', 'u', 'p') AND c.conrelid::regclass::text = ANY ($1)
		ORDER BY c.contype = 'f' DESC, c.conname`, tableNames())
	if err != nil {
		return nil, fmt.Errorf("seed: list constraints: %w", postgres.Translate(err))
	}
	var out []ddl
	for rows.Next() {
		var d ddl
		var def string
		if err := rows.Scan(&d.table, &d.name, &def, &d.foreign); err != nil {
			rows.Close()
			return nil, fmt.Errorf("seed: list constraints: %w", err)
		}
		d.create = fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", pgx.Identifier{d.table}.Sanitize(), pgx.Identifier{d.name}.Sanitize(), def)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("seed: list constraints: %w", postgres.Translate(err))
	}
	rows, err = pool.Query(ctx, `
		SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
		FROM pg_index i
		WHERE i.indrelid::regclass::text = ANY ($1) AND NOT i.indisprimary
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
		ORDER BY 2`, tableNames())
	if err != nil {
		return nil, fmt.Errorf("seed: list indexes: %w", postgres.Translate(err))
	}
	for rows.Next() {
		var d ddl
		if err := rows.Scan(&d.table, &d.name, &d.create); err != nil {
			rows.Close()
			return nil, fmt.Errorf("seed: list indexes: %w", err)
		}
		// The index of a partitioned table is defined "ON ONLY" the parent
		// (its partitions' indexes are attached one by one); made again,
		// it must cover the partitions.
		d.create = strings.Replace(d.create, " ON ONLY ", " ON ", 1)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("seed: list indexes: %w", postgres.Translate(err))
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, d := range out { // foreign keys first: they may lean on the others
			var sql string
			if d.create[:5] == "ALTER" {
				sql = fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", pgx.Identifier{d.table}.Sanitize(), pgx.Identifier{d.name}.Sanitize())
			} else {
				sql = "DROP INDEX " + pgx.Identifier{d.name}.Sanitize()
			}
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("seed: drop %s: %w", d.name, postgres.Translate(err))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rebuild makes the dropped keys and indexes again, several
// at once, then the foreign keys one after the other (each locks both of
// its tables).
func rebuild(ctx context.Context, pool *pgxpool.Pool, dropped []ddl, workers int) error {
	work := make(chan ddl)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range min(workers, 4) {
		wg.Go(func() {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				errs <- err
				for range work {
				}
				return
			}
			defer conn.Release()
			_, _ = conn.Exec(ctx, `SET maintenance_work_mem = '256MB'`)
			for d := range work {
				if _, err := conn.Exec(ctx, d.create); err != nil {
					errs <- fmt.Errorf("seed: rebuild %s: %w", d.name, postgres.Translate(err))
				}
			}
		})
	}
	for _, d := range dropped {
		if !d.foreign {
			work <- d
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for _, d := range dropped {
		if d.foreign {
			if _, err := pool.Exec(ctx, d.create); err != nil {
				return fmt.Errorf("seed: rebuild %s: %w", d.name, postgres.Translate(err))
			}
		}
	}
	return nil
}

// limitPrefix names the scratch tables of the limit measurement.
const limitPrefix = "seed_limit_"

// measureLimit measures the limit the seed is judged by, in index- and
// key-free copies of the seeded tables: first the COPY alone of the rows
// of up to 500 organizations generated beforehand (copyOnly), then the
// first cfg.LimitOrgs organizations generated and copied exactly as the
// seed does (limit).
func measureLimit(ctx context.Context, pool *pgxpool.Pool, g *generator, cfg Config) (copyOnly, limit float64, err error) {
	defer dropLimitTables(context.WithoutCancel(ctx), pool)
	if err := createLimitTables(ctx, pool); err != nil {
		return 0, 0, err
	}
	batches, err := pregenerate(g, cfg)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	total, err := copyBatches(ctx, pool, batches, cfg.Workers)
	if err != nil {
		return 0, 0, fmt.Errorf("seed: measure the copy limit: %w", err)
	}
	copyOnly = float64(total) / time.Since(start).Seconds()
	batches = nil
	if err := createLimitTables(ctx, pool); err != nil {
		return 0, 0, err
	}
	sample := cfg
	sample.Orgs = cfg.LimitOrgs
	start = time.Now()
	counts, _, err := load(ctx, pool, g, sample, limitPrefix, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("seed: measure the copy limit: %w", err)
	}
	total = 0
	for _, v := range counts {
		total += v
	}
	return copyOnly, float64(total) / time.Since(start).Seconds(), nil
}

func dropLimitTables(ctx context.Context, pool *pgxpool.Pool) {
	for _, t := range tables {
		_, _ = pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{limitPrefix + t.name}.Sanitize())
	}
}

// createLimitTables makes empty index- and key-free copies of the tables.
func createLimitTables(ctx context.Context, pool *pgxpool.Pool) error {
	dropLimitTables(ctx, pool)
	for _, t := range tables {
		_, err := pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING IDENTITY)`,
			pgx.Identifier{limitPrefix + t.name}.Sanitize(), pgx.Identifier{t.name}.Sanitize()))
		if err != nil {
			return fmt.Errorf("seed: limit table %s: %w", t.name, postgres.Translate(err))
		}
	}
	return nil
}

// pregenerate generates the first organizations of the sample (at most
// 500) into batches before any copy, so copying alone can be timed.
func pregenerate(g *generator, cfg Config) ([]*batch, error) {
	var batches []*batch
	for first := 0; first < min(cfg.LimitOrgs, 500); first += cfg.ChunkOrgs {
		b := &batch{firstOrg: first}
		for i := first; i < min(first+cfg.ChunkOrgs, cfg.LimitOrgs, 500); i++ {
			if err := g.gen(b, i); err != nil {
				return nil, err
			}
		}
		g.finish(b)
		batches = append(batches, b)
	}
	return batches, nil
}

// copyBatches copies batches into the limit tables over workers
// connections and returns the rows copied.
func copyBatches(ctx context.Context, pool *pgxpool.Pool, batches []*batch, workers int) (int64, error) {
	work := make(chan *batch, len(batches))
	for _, b := range batches {
		work <- b
	}
	close(work)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		first error
	)
	for range workers {
		wg.Go(func() {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
				return
			}
			defer conn.Release()
			_, _ = conn.Exec(ctx, `SET synchronous_commit = off`)
			for b := range work {
				n, err := copyBatch(ctx, conn.Conn(), b, limitPrefix)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				for _, v := range n {
					total += v
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return total, first
}
