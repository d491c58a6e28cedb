package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"hmp/internal/app"
	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
)

const verifyUsage = `Usage: hmp verify [flags]

Walk the hash chain of each organization's events (or of one, --org) and
recompute every link: each event's content hash from the stored row, its link
hash sha256(prev_hash || content_hash), the positions without a gap, and the
organization's chain head. Prints JSON with the first broken link of each
broken chain (organization, event seq and id, chain position, what differs).
Exits 1 when any chain is broken. Reads only; runs beside a serving hmp.

Flags:`

func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	org := fs.String("org", "", "verify one organization (its id); empty: every organization (HMP_VERIFY_ORG)")
	heads := fs.Bool("heads", false, "print each chain's head hash, to record outside the database (HMP_VERIFY_HEADS)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, verifyUsage)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	opts := eventstore.VerifyOptions{Heads: *heads}
	if *org != "" {
		id, err := domain.ParseID(*org)
		if err != nil {
			return usageError{fmt.Errorf("--org: %w", err)}
		}
		opts.OrgID = id
	}
	logger, err := c.logger(stderr)
	if err != nil {
		return usageError{err}
	}
	cfg := c.cfg.WithDefaults()
	url, local, err := app.OpenDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if local != nil {
		defer local.Stop()
	}
	pool, err := postgres.Open(ctx, url, postgres.PoolConfig{MaxConns: 2, MinConns: 1})
	if err != nil {
		return err
	}
	defer pool.Close()
	opts.Progress = func(done int, events int64) {
		if done%10000 == 0 {
			logger.Info("verify_progress", "orgs", done, "events", events)
		}
	}
	v, err := eventstore.Verify(ctx, pool, opts)
	if err != nil {
		return err
	}
	if v.Breaks == nil {
		v.Breaks = []eventstore.Break{}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	for _, b := range v.Breaks {
		fmt.Fprintln(stderr, "broken:", b)
	}
	if len(v.Breaks) > 0 {
		return errors.New("hash chain broken")
	}
	return nil
}
