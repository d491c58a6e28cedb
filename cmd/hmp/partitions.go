package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/stdlib"

	"hmp/internal/domain"
	"hmp/internal/partitions"
	"hmp/internal/tools"
)

func partitionsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "migrate" {
		return partitionsMigrate(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("hmp partitions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	org := fs.String("org", "", "also print which partition of each table this organization id lives in (HMP_PARTITIONS_ORG)")
	jsonOut := fs.Bool("json", false, "print JSON instead of text (HMP_PARTITIONS_JSON)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp partitions [flags]
       hmp partitions migrate [flags]

Print, per table partitioned by hash of org_id, its partitions, rows and size,
and the spread: the largest partition over the mean (1.00 is even), of rows
and of bytes. Rows are the statistics' live-row estimates (run ANALYZE for
exact ones). With --org, the partition each table keeps that organization's
rows in, as PostgreSQL's own partition hash decides, and its row count there.
Tables still unpartitioned are listed as pending: 'hmp partitions migrate'
moves them online.

Flags:`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *org != "" {
		if _, err := domain.ParseID(*org); err != nil {
			return usageError{fmt.Errorf("--org must be an organization id (a UUID), got %q", *org)}
		}
	}
	db, done, err := partitionsDB(ctx, &c, stderr)
	if err != nil {
		return err
	}
	defer done()
	states, err := partitions.States(ctx, db)
	if err != nil {
		return err
	}
	parts, err := partitions.Inspect(ctx, db)
	if err != nil {
		return err
	}
	spreads := partitions.Spreads(parts)
	var homes []partitions.Home
	if *org != "" {
		if homes, err = partitions.OrgHome(ctx, db, *org); err != nil {
			return err
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"tables": states, "spread": spreads, "partitions": parts, "org": homes})
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "table\tpartitions\trows\tbytes\trows max/mean\tbytes max/mean\t")
	for _, s := range spreads {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%.2f\t%.2f\t\n", s.Table, s.Partitions, s.Rows, s.Bytes, s.RowsSpread, s.SizeSpread)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, st := range states {
		if st.State != partitions.StatePartitioned {
			fmt.Fprintf(stdout, "%s: %s (unpartitioned; run 'hmp partitions migrate')\n", st.Table, st.State)
		}
	}
	if *org != "" {
		fmt.Fprintf(stdout, "\norganization %s:\n", *org)
		for _, h := range homes {
			fmt.Fprintf(stdout, "  %s: %s (remainder %d), %d rows\n", h.Table, h.Partition, h.Remainder, h.Rows)
		}
	}
	return nil
}

func partitionsMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp partitions migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	var cfg partitions.MigrateConfig
	fs.IntVar(&cfg.Batch, "batch", 5000, "rows copied per statement (each its own short transaction) (HMP_PARTITIONS_BATCH)")
	fs.DurationVar(&cfg.LockTimeout, "lock-timeout", 0, "longest wait for a table's switch lock before catching up and trying again; 0: 5s (HMP_PARTITIONS_LOCK_TIMEOUT)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp partitions migrate [flags]

Move every table still unpartitioned (a schema created before partitioning,
or with --partitions -1) to hash partitions by org_id, while HMP serves it:
per table, build the partitioned copy, record the keys of rows changed from
then on, copy in --batch keyset batches, re-copy the changed rows, verify
every organization (row count and sum of row hashes) online, then under a
short lock (reads continue, writes wait) catch up, verify the organizations
that changed, and switch the names. The partition count is --partitions
(0: the recorded one, else 16). Safe to interrupt and run again.

Flags:`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if cfg.Batch < 1 {
		return usageError{fmt.Errorf("--batch must be at least 1, got %d", cfg.Batch)}
	}
	if c.cfg.Partitions < 0 {
		return usageError{errors.New("--partitions must not be negative here")}
	}
	cfg.Partitions = c.cfg.Partitions
	logger, err := c.logger(stderr)
	if err != nil {
		return usageError{err}
	}
	cfg.Logger = logger
	db, done, err := partitionsDB(ctx, &c, stderr)
	if err != nil {
		return err
	}
	defer done()
	moved, err := partitions.Migrate(ctx, db, cfg)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if encErr := enc.Encode(moved); encErr != nil && err == nil {
		err = encErr
	}
	return err
}

// partitionsDB opens the configured database (the embedded one under the
// data dir when no URL is set), migrated.
func partitionsDB(ctx context.Context, c *common, stderr io.Writer) (*sql.DB, func(), error) {
	logger, err := c.logger(stderr)
	if err != nil {
		return nil, nil, usageError{err}
	}
	db, err := tools.OpenTool(ctx, c.cfg, logger, tools.ToolOptions{Conns: 4})
	if err != nil {
		return nil, nil, err
	}
	sdb := stdlib.OpenDBFromPool(db.Pool)
	return sdb, func() { _ = sdb.Close(); db.Close() }, nil
}
